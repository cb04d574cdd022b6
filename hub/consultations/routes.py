"""This domain's routers for hub.app: the consultation JSON routes."""

from __future__ import annotations

from fastapi import APIRouter

from hub.consultations import api

ROUTERS: tuple[APIRouter, ...] = (api.router,)
