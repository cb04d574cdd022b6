"""This domain's routers for hub.app: the consultation JSON routes and the citizens' booking pages."""

from __future__ import annotations

from fastapi import APIRouter

from hub.consultations import api, public_pages

ROUTERS: tuple[APIRouter, ...] = (api.router, public_pages.router)
