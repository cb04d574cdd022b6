"""This domain's routers for hub.app: sign-in and account pages, administration, tenant JSON."""

from __future__ import annotations

from fastapi import APIRouter

from hub.tenancy import admin_pages, api, pages

ROUTERS: tuple[APIRouter, ...] = (
    pages.router,
    admin_pages.router,
    api.router,
)
