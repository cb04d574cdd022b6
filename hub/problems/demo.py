"""The demo town's Mängelmelder: categories, the areas of its four districts, and who takes places beyond them.

The areas match the sandbox geocoder's demo addresses (channels/sandbox/nominatim.py): Mitte,
Nord and Süd are bands of the town from south to north, Ost its eastern strip.
"""

from __future__ import annotations

from sqlmodel import Session

from hub.problems.models import DistrictShape
from hub.problems.places import set_district_shape
from hub.problems.service import create_category, find_category
from hub.subscribers.catalogue import find_district
from hub.tenancy.models import Municipality

# (key, German name, English name, labels, response target in hours)
DEMO_CATEGORIES = (
    ("laterne", "Straßenbeleuchtung", "Street lighting", ("Mängelmelder", "Beleuchtung"), 72),
    ("schlagloch", "Straßenschaden", "Road damage", ("Mängelmelder",), 120),
    ("muell", "Wilder Müll", "Illegal dumping", ("Mängelmelder",), 48),
    ("gruen", "Grünanlagen", "Parks and green spaces", ("Mängelmelder",), None),
)
WEST, EAST, SPLIT_EAST = 10.00, 10.04, 10.03
SOUTH, NORTH = 51.00, 51.03


def _box(west: float, south: float, east: float, north: float) -> dict[str, object]:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


DEMO_SHAPES = {
    "sued": _box(WEST, SOUTH, SPLIT_EAST, 51.01),
    "mitte": _box(WEST, 51.01, SPLIT_EAST, 51.02),
    "nord": _box(WEST, 51.02, SPLIT_EAST, NORTH),
    "ost": _box(SPLIT_EAST, SOUTH, EAST, NORTH),
}
DEMO_OUTSIDE_CONTACT = "der Landkreis Musterkreis (Straßenverkehrsamt, Telefon 03601 123-0)"


def seed_problem_demo(session: Session, municipality_id: int, *, team_id: int | None = None) -> None:
    """Categories (for the team `team_id`), district shapes, the outside contact; again adds only what is missing."""
    for key, name_de, name_en, labels, hours in DEMO_CATEGORIES:
        if find_category(session, municipality_id=municipality_id, word=key) is None:
            create_category(
                session, municipality_id=municipality_id, key=key, name_de=name_de, name_en=name_en,
                team_id=team_id, labels=labels, response_hours=hours,
            )  # fmt: skip
    for key, geometry in DEMO_SHAPES.items():
        district = find_district(session, municipality_id=municipality_id, word=key)
        if district is not None and session.get(DistrictShape, district.id) is None:
            set_district_shape(session, municipality_id=municipality_id, district_key=key, geometry=geometry)
    municipality = session.get(Municipality, municipality_id)
    assert municipality is not None
    if "problem_outside_contact" not in (municipality.preferences or {}):
        municipality.preferences = {**(municipality.preferences or {}), "problem_outside_contact": DEMO_OUTSIDE_CONTACT}
        session.add(municipality)
    session.flush()
