"""What every Mängelmelder map on a page needs: the tile server and its credit, the town's area, reports as pins."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from hub.problems.places import viewbox
from hub.settings import Settings
from hub.tenancy.models import Municipality


def map_settings(session: Session, settings: Settings, municipality: Municipality) -> dict[str, Any]:
    """The tile server and its credit, and the town's area (west,south,east,north) for the map to open on."""
    area = viewbox(session, municipality)
    return {"tiles": settings.map_tile_url, "attribution": settings.map_tile_attribution,
            "bounds": ",".join(f"{value:.5f}" for value in area) if area else ""}  # fmt: skip


def pin(lat: float, lon: float, *parts: str | None, url: str | None = None) -> dict[str, Any]:
    """A pin at the place, labelled by the parts given (reference, category, address), linking to `url` if any."""
    return {"lat": lat, "lon": lon, "label": " · ".join(part for part in parts if part), "url": url}
