"""This domain's routers for hub.app: the admins' JSON routes and page, and the public pages."""

from __future__ import annotations

from fastapi import APIRouter

from hub.official_warnings import api, pages, public_pages

ROUTERS: tuple[APIRouter, ...] = (api.router, pages.router, public_pages.router)
