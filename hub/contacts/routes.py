"""This domain's routers for hub.app: the contact JSON routes."""

from __future__ import annotations

from fastapi import APIRouter

from hub.contacts import api

ROUTERS: tuple[APIRouter, ...] = (api.router,)
