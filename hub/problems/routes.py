"""This domain's routers for hub.app: the staff JSON routes, the public list, and the reporter's own photos."""

from __future__ import annotations

from fastapi import APIRouter

from hub.problems import api, public_pages

ROUTERS: tuple[APIRouter, ...] = (api.router, api.public_router, public_pages.router)
