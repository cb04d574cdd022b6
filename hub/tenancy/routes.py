"""This domain's routers for hub.app: the tenant JSON routes (its pages are in hub/web/)."""

from __future__ import annotations

from fastapi import APIRouter

from hub.tenancy import api

ROUTERS: tuple[APIRouter, ...] = (api.router,)
