"""This domain's routers for hub.app: the consultation JSON routes and the calendar feeds."""

from __future__ import annotations

from fastapi import APIRouter

from hub.consultations import api, calendar

ROUTERS: tuple[APIRouter, ...] = (api.router, calendar.feed_router)
