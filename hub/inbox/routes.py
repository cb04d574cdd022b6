"""This domain's routers for hub.app: the staff inbox, the citizen's status page, conversation JSON."""

from __future__ import annotations

from fastapi import APIRouter

from hub.inbox import api, pages, public_pages

ROUTERS: tuple[APIRouter, ...] = (
    pages.router,
    public_pages.router,
    public_pages.lookup_router,
    api.router,
)
