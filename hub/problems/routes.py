"""This domain's routers for hub.app: the staff JSON routes, the public list, the reporter's own photos, and the
citizens' form and map pages, the staff's map."""

from __future__ import annotations

from fastapi import APIRouter

from hub.problems import api, citizen_pages, public_pages, staff_pages

ROUTERS: tuple[APIRouter, ...] = (
    api.router,
    api.public_router,
    public_pages.router,
    citizen_pages.router,
    staff_pages.router,
)
