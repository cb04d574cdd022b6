"""Geocoding behind a small interface: an address to a place and back, with one Nominatim-compatible implementation.

Nominatim (self-hostable, OpenStreetMap data) answers `/search?q=…&format=jsonv2` with a JSON list
of places, each with `lat` and `lon` as strings and a `display_name`, and `/reverse?lat=…&lon=…&format=jsonv2`
with one place, or `{"error": "Unable to geocode"}` where there is nothing
(nominatim.org/release-docs/latest/api/Search, …/Reverse, …/Output). Its usage policy asks every
client to name itself in the User-Agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx

REQUEST_TIMEOUT_SECONDS = 10.0
USER_AGENT = "RathausHub/1.0 (Maengelmelder)"


@dataclass(frozen=True)
class Place:
    """A point (WGS 84 degrees) and the address a person would recognise it by."""

    lat: float
    lon: float
    address: str


class GeocodingUnavailable(Exception):
    """The geocoding service could not be reached or answered with an error: try again later."""


class Geocoder(Protocol):
    def search(self, query: str, *, viewbox: tuple[float, float, float, float] | None = None) -> Place | None:
        """The best match for an address, or None; places in `viewbox` (min lon, min lat, max lon, max lat) first."""
        ...

    def reverse(self, lat: float, lon: float) -> Place | None:
        """The address at a point, or None where the service knows none."""
        ...


def _place(item: Any) -> Place | None:
    if not isinstance(item, dict) or "error" in item:
        return None
    try:
        return Place(lat=float(item["lat"]), lon=float(item["lon"]), address=str(item.get("display_name") or ""))
    except (KeyError, TypeError, ValueError):
        return None


class NominatimGeocoder:
    """Talks to a Nominatim-compatible service at `base_url` (the public one, a town's own, or the sandbox)."""

    def __init__(self, base_url: str, *, language: str = "de", transport: httpx.BaseTransport | None = None) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=REQUEST_TIMEOUT_SECONDS,
            headers={"User-Agent": USER_AGENT, "Accept-Language": language},
            transport=transport,
        )

    def _get(self, path: str, params: dict[str, str]) -> Any:
        try:
            answer = self._client.get(path, params={**params, "format": "jsonv2"})
            answer.raise_for_status()
            return answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise GeocodingUnavailable(f"Nominatim {path}: {exc}") from exc

    def search(self, query: str, *, viewbox: tuple[float, float, float, float] | None = None) -> Place | None:
        params = {"q": query, "limit": "1"}
        if viewbox is not None:
            params["viewbox"] = ",".join(f"{value:.6f}" for value in viewbox)
        found = self._get("/search", params)
        return _place(found[0]) if isinstance(found, list) and found else None

    def reverse(self, lat: float, lon: float) -> Place | None:
        return _place(self._get("/reverse", {"lat": f"{lat:.7f}", "lon": f"{lon:.7f}"}))
