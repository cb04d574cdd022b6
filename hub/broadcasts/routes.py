"""This domain's routers for hub.app: the broadcast pages and JSON routes, and the citizens' links."""

from __future__ import annotations

from fastapi import APIRouter

from hub.broadcasts import api, pages, public_pages

ROUTERS: tuple[APIRouter, ...] = (
    pages.router,
    api.router,
    public_pages.router,
    public_pages.unsubscribe_router,
    public_pages.calendar_router,
)
