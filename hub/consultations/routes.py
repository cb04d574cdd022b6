"""This domain's routers for hub.app: the consultation JSON routes, the staff pages and the calendar feeds."""

from __future__ import annotations

from fastapi import APIRouter

from hub.consultations import api, calendar, staff_pages

ROUTERS: tuple[APIRouter, ...] = (api.router, staff_pages.router, calendar.feed_router)
