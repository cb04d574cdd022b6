"""This domain's routers for hub.app: subscriber pages, citizens' sign-up pages, subscription JSON."""

from __future__ import annotations

from fastapi import APIRouter

from hub.subscribers import api, pages, public_pages, topic_pages

ROUTERS: tuple[APIRouter, ...] = (
    pages.router,
    public_pages.router,
    topic_pages.router,
    api.router,
    api.public_router,
)
