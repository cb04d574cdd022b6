"""The web toolkit's own routers for hub.app: sign-in and account pages, administration."""

from __future__ import annotations

from fastapi import APIRouter

from hub.web import admin_pages, citizen_pages, signin_pages

ROUTERS: tuple[APIRouter, ...] = (
    signin_pages.router,
    admin_pages.router,
    citizen_pages.router,
)
