"""This domain's routers for hub.app: the report pages."""

from __future__ import annotations

from fastapi import APIRouter

from hub.reports import pages

ROUTERS: tuple[APIRouter, ...] = (pages.router,)
