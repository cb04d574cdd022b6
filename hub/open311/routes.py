"""This domain's routers for hub.app: the GeoReport v2 endpoint of each town and the admins' client keys."""

from __future__ import annotations

from fastapi import APIRouter

from hub.open311 import api

ROUTERS: tuple[APIRouter, ...] = (api.router, api.admin_router)
