"""This domain's routers for hub.app: JSON routes, staff pages, calendar feeds, the citizens' booking and feedback."""

from __future__ import annotations

from fastapi import APIRouter

from hub.consultations import api, calendar, feedback_pages, join_pages, public_pages, staff_pages, waiting_pages

ROUTERS: tuple[APIRouter, ...] = (
    api.router,
    staff_pages.router,
    waiting_pages.router,
    calendar.feed_router,
    public_pages.router,
    join_pages.router,
    feedback_pages.router,
)
