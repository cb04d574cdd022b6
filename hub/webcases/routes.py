"""This domain's routers for hub.app: the citizens' page to write to the town."""

from __future__ import annotations

from fastapi import APIRouter

from hub.webcases import pages

ROUTERS: tuple[APIRouter, ...] = (pages.router,)
