"""This domain's routers for hub.app: the admins' JSON routes and the public pages."""

from __future__ import annotations

from fastapi import APIRouter

from hub.official_warnings import api, public_pages

ROUTERS: tuple[APIRouter, ...] = (api.router, public_pages.router)
