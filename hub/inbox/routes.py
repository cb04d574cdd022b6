"""This domain's routers for hub.app: the staff inbox, the citizen's status page, conversation JSON."""

from __future__ import annotations

from fastapi import APIRouter

from hub.inbox import api, pages, status_page

ROUTERS: tuple[APIRouter, ...] = (
    pages.router,
    status_page.router,
    api.router,
)
