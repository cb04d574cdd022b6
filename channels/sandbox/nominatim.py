"""A Nominatim geocoder for the demo town: /nominatim/search and /nominatim/reverse over a small address table.

Answers in Nominatim's jsonv2 shape (lat and lon as strings, `category` where format=json says
`class`, `boundingbox` as four strings: min lat, max lat, min lon, max lon), an empty list when
a search finds nothing and `{"error": "Unable to geocode"}` when a point has no address. Only jsonv2 is spoken, whatever
`format` asks for.
"""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

router = APIRouter(prefix="/nominatim", tags=["nominatim"])

LICENCE = "Data © OpenStreetMap contributors, ODbL 1.0. https://osm.org/copyright"
# Reverse answers the nearest address within this distance, as Nominatim does at zoom 18.
REVERSE_RADIUS_METRES = 150.0

# The demo town (Musterstadt, districts Mitte, Nord, Süd, Ost) and one place beyond its border.
# (street, house number, district or town part, town, postcode, lat, lon)
ADDRESSES: tuple[tuple[str, str, str, str, str, float, float], ...] = (
    ("Hauptstraße", "12", "Mitte", "Musterstadt", "99999", 51.01500, 10.01500),
    ("Hauptstraße", "14", "Mitte", "Musterstadt", "99999", 51.01530, 10.01520),
    ("Am Markt", "1", "Mitte", "Musterstadt", "99999", 51.01620, 10.01800),
    ("Bahnhofstraße", "3", "Nord", "Musterstadt", "99999", 51.02500, 10.01000),
    ("Lindenweg", "7", "Süd", "Musterstadt", "99999", 51.00500, 10.02000),
    ("Gartenweg", "2", "Ost", "Musterstadt", "99999", 51.02000, 10.03500),
    ("Kreisstraße", "1", "Nachbarstadt", "Nachbarstadt", "99998", 51.10000, 10.10000),
)


def _normalised(text: str) -> str:
    text = text.lower().replace("str.", "straße").replace("strasse", "straße")
    return re.sub(r"[^\wäöüß]+", " ", text).strip()


def _item(index: int, entry: tuple[str, str, str, str, str, float, float]) -> dict[str, Any]:
    street, number, part, town, postcode, lat, lon = entry
    return {
        "place_id": 1000 + index,
        "licence": LICENCE,
        "osm_type": "node",
        "osm_id": 500000 + index,
        "lat": f"{lat:.7f}",
        "lon": f"{lon:.7f}",
        "category": "place",
        "type": "house",
        "place_rank": 30,
        "importance": 0.00001,
        "addresstype": "place",
        "name": "",
        "display_name": f"{number}, {street}, {part}, {town}, {postcode}, Deutschland",
        "boundingbox": [f"{lat - 0.00005:.7f}", f"{lat + 0.00005:.7f}", f"{lon - 0.00005:.7f}", f"{lon + 0.00005:.7f}"],
    }


@router.get("/search")
def search(q: str = Query(""), limit: int = Query(10)) -> JSONResponse:
    words = f" {_normalised(q)} "
    found = [
        _item(index, entry) for index, entry in enumerate(ADDRESSES) if f" {_normalised(entry[0])} {entry[1]} " in words
    ]
    if not found:
        # Another house number of a street it knows: Nominatim answers from the street's address
        # interpolation, here placed at the street's first known house.
        for index, entry in enumerate(ADDRESSES):
            number = re.search(rf" {re.escape(_normalised(entry[0]))} (\d+[a-z]?) ", words)
            if number:
                found = [{**_item(index, (entry[0], number.group(1), *entry[2:])), "osm_type": "way"}]
                break
    return JSONResponse(found[: max(limit, 1)])


def _metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    dlat, dlon = math.radians(lat2 - lat1), math.radians(lon2 - lon1)
    a = math.sin(dlat / 2) ** 2 + math.cos(math.radians(lat1)) * math.cos(math.radians(lat2)) * math.sin(dlon / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


@router.get("/reverse")
def reverse(lat: float = Query(...), lon: float = Query(...)) -> JSONResponse:
    distance, index = min((_metres(lat, lon, entry[5], entry[6]), index) for index, entry in enumerate(ADDRESSES))
    if distance > REVERSE_RADIUS_METRES:
        return JSONResponse({"error": "Unable to geocode"})
    return JSONResponse(_item(index, ADDRESSES[index]))
