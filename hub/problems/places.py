"""Where a report is: addresses geocoded, points checked against the town's area and matched to its districts."""

from __future__ import annotations

import math
from typing import Any

from shapely.errors import GEOSException
from shapely.geometry import Point, box, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union
from sqlmodel import Session, select

from channels.geocoding import Geocoder, GeocodingUnavailable, NominatimGeocoder, Place
from hub.db import utcnow
from hub.errors import ChannelUnavailable, InvalidInput, NotFound
from hub.i18n import N_
from hub.problems.models import DistrictShape
from hub.settings import Settings
from hub.subscribers.catalogue import district_by_key
from hub.subscribers.models import District
from hub.tenancy.models import Municipality
from hub.tenancy.preferences import preference

EARTH_RADIUS_METRES = 6_371_000.0


def geocoder_for(settings: Settings) -> Geocoder:
    return NominatimGeocoder(settings.effective_geocoder_url)


def check_coordinates(lat: float, lon: float) -> None:
    """Refuses a point that is on no map (a swapped or mistyped pair of numbers)."""
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise InvalidInput(
            N_("Diesen Ort gibt es nicht: die Breite liegt zwischen -90 und 90, die Länge zwischen -180 und 180.")
        )


def metres_between(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle (haversine) distance; at a town's scale it is exact to centimetres."""
    dlat, dlon = math.radians(lat2 - lat1), math.radians(lon2 - lon1)
    a = math.sin(dlat / 2) ** 2 + math.cos(math.radians(lat1)) * math.cos(math.radians(lat2)) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_METRES * math.asin(math.sqrt(min(1.0, a)))


def _geometry(geojson: Any) -> BaseGeometry:
    """A GeoJSON Polygon or MultiPolygon (a Feature's geometry too) as a valid shape, or a clear refusal."""
    if isinstance(geojson, dict) and geojson.get("type") == "Feature":
        geojson = geojson.get("geometry")
    if not isinstance(geojson, dict) or geojson.get("type") not in ("Polygon", "MultiPolygon"):
        raise InvalidInput(N_("Die Fläche muss ein GeoJSON-Polygon oder -Multipolygon sein."))
    try:
        geometry = shape(geojson)
    except (GEOSException, ValueError, TypeError, IndexError, KeyError):
        raise InvalidInput(N_("Die Fläche ist kein gültiges GeoJSON: die Koordinaten stimmen nicht.")) from None
    if geometry.is_empty or not geometry.is_valid:
        raise InvalidInput(N_("Die Fläche ist ungültig: ihr Rand darf sich nicht selbst schneiden."))
    return geometry


def set_district_shape(session: Session, *, municipality_id: int, district_key: str, geometry: Any) -> DistrictShape:
    """Gives a subscribers' district its area (drawn or imported as GeoJSON); a new one replaces the old."""
    district = district_by_key(session, municipality_id=municipality_id, word=district_key)
    _geometry(geometry)
    assert district.id is not None
    row = session.get(DistrictShape, district.id)
    if row is None:
        row = DistrictShape(district_id=district.id, municipality_id=municipality_id, geometry=geometry)
    row.geometry, row.updated_at = geometry, utcnow()
    session.add(row)
    session.flush()
    return row


def set_shape_of(session: Session, *, municipality_id: int, district_id: int, geometry: Any) -> DistrictShape:
    """The same, for a district named by its id (the API's path)."""
    district = session.get(District, district_id)
    if district is None or district.municipality_id != municipality_id:
        raise NotFound(N_("Den Ortsteil {district_id} gibt es nicht."), district_id=district_id)
    return set_district_shape(session, municipality_id=municipality_id, district_key=district.key, geometry=geometry)


def _shapes(session: Session, municipality_id: int) -> list[tuple[int, BaseGeometry]]:
    rows = session.exec(select(DistrictShape).where(DistrictShape.municipality_id == municipality_id)).all()
    return [(row.district_id, _geometry(row.geometry)) for row in rows]


def districts_meeting(session: Session, *, municipality_id: int, area: Any) -> list[int] | None:
    """The districts whose shapes share ground with a GeoJSON area (Polygon, MultiPolygon or a Feature of one);
    None where the town has given its districts no shapes."""
    shapes = _shapes(session, municipality_id)
    if not shapes:
        return None
    reach = _geometry(area)
    # Neighbouring districts only share a border with an area drawn along it: they are not in it.
    return sorted(
        district_id for district_id, geometry in shapes if geometry.intersects(reach) and not geometry.touches(reach)
    )


def town_area(session: Session, municipality: Municipality) -> BaseGeometry | None:
    """The union of the district shapes, else the bounding box preference; None: the town set no area."""
    assert municipality.id is not None
    shapes = _shapes(session, municipality.id)
    if shapes:
        return unary_union([geometry for _, geometry in shapes])
    bbox = preference(municipality, "problem_area_bbox")
    return box(*bbox) if bbox else None


def outside_town(municipality: Municipality) -> InvalidInput:
    """The friendly refusal of a place beyond the town, naming who is responsible there when the town said."""
    responsible = preference(municipality, "problem_outside_contact")
    if responsible:
        return InvalidInput(
            N_(
                "Dieser Ort liegt außerhalb von {town}. Dafür ist {responsible} zuständig; "
                "bitte melden Sie es dort. Vielen Dank!"
            ),
            town=municipality.name,
            responsible=responsible,
        )
    return InvalidInput(
        N_("Dieser Ort liegt außerhalb von {town}; dort können wir leider nichts tun. Danke für den Hinweis!"),
        town=municipality.name,
    )


def district_at(session: Session, *, municipality: Municipality, lat: float, lon: float) -> int | None:
    """The district the point lies in (None where the town has no shapes there), or a refusal if it is outside."""
    check_coordinates(lat, lon)
    assert municipality.id is not None
    point = Point(lon, lat)  # GeoJSON order: longitude first
    shapes = _shapes(session, municipality.id)
    for district_id, geometry in shapes:
        if geometry.covers(point):
            return district_id
    area = town_area(session, municipality) if not shapes else None
    if shapes or (area is not None and not area.covers(point)):
        raise outside_town(municipality)
    return None


def viewbox(session: Session, municipality: Municipality) -> tuple[float, float, float, float] | None:
    area = town_area(session, municipality)
    return area.bounds if area is not None else None


def geocode(session: Session, *, settings: Settings, municipality: Municipality, address: str) -> Place:
    """The place of an address typed by a citizen, searched first within the town; refusals say what to do."""
    query = address.strip()
    if not query:
        raise InvalidInput(N_("Bitte geben Sie eine Adresse an, zum Beispiel „Hauptstraße 12“."))
    try:
        place = geocoder_for(settings).search(query, viewbox=viewbox(session, municipality))
    except GeocodingUnavailable:
        raise ChannelUnavailable(
            N_("Die Adresssuche ist gerade nicht erreichbar. Bitte versuchen Sie es später noch einmal.")
        ) from None
    if place is None:
        raise InvalidInput(
            N_("Die Adresse „{address}“ haben wir nicht gefunden. Bitte prüfen Sie Straße und Hausnummer."),
            address=query[:120],
        )
    return place


def address_at(settings: Settings, *, lat: float, lon: float) -> str | None:
    """The address at a shared location, for staff and the public list; None when the geocoder knows none or is away."""
    try:
        place = geocoder_for(settings).reverse(lat, lon)
    except GeocodingUnavailable:
        return None
    return place.address if place is not None else None
