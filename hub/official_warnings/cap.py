"""CAP out: every warning and all-clear the hub sends as an OASIS CAP 1.2 alert, and a town's Atom feed of them.

Elements are in the namespace urn:oasis:names:tc:emergency:cap:1.2, in the order the schema
demands. Times carry a numeric zone and no fractions (the schema's pattern): the town's own
time. An update or all-clear names the alerts it follows in `references`, as
"sender,identifier,sent" triples. A relayed official warning keeps the official category,
event, urgency, certainty and status (an exercise stays an exercise); the hub's own are Actual.
Areas are the districts the broadcast targets (all of them when it targets none), each with
its shape as polygons where the town drew one, and the town's regional key as a geocode.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element, SubElement, tostring
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from hub.broadcasts.models import Broadcast
from hub.db import utcnow
from hub.errors import NotFound
from hub.i18n import N_, gettext_for
from hub.official_warnings.models import OfficialWarning, WarningRelay
from hub.problems.models import DistrictShape
from hub.settings import Settings
from hub.subscribers.models import District
from hub.tenancy.models import Municipality
from hub.tenancy.service import get_municipality

CAP_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"
CAP_MEDIA_TYPE = "application/cap+xml"
ATOM_MEDIA_TYPE = "application/atom+xml"
CATEGORIES = ("Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra", "CBRNE",
              "Other")  # fmt: skip
# A broadcast in one of these has gone out or is going out now: it is published.
PUBLISHED_STATUSES = ("approved", "sending", "paused", "completed")
# The feed: what was sent in this time, at most this many.
FEED_DAYS = 30
FEED_ENTRIES = 50
FEED_TITLE = N_("Warnungen: {municipality}")


def _cap(parent: Element, tag: str, text: str | None = None) -> Element:
    element = SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def cap_time(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).replace(microsecond=0).isoformat()


def _ring(coordinates: Iterable[Any]) -> str:
    # GeoJSON is lon,lat; CAP wants lat,lon, the first pair repeated last.
    pairs = [f"{float(lat):.6f},{float(lon):.6f}" for lon, lat, *_ in coordinates]
    if pairs and pairs[0] != pairs[-1]:
        pairs.append(pairs[0])
    return " ".join(pairs)


def polygons(geometry: dict[str, Any]) -> list[str]:
    """The outer rings of a GeoJSON Polygon or MultiPolygon as CAP polygons (holes are not expressible)."""
    if geometry.get("type") == "Feature":
        geometry = geometry.get("geometry") or {}
    if geometry.get("type") == "Polygon":
        return [_ring(geometry["coordinates"][0])]
    if geometry.get("type") == "MultiPolygon":
        return [_ring(polygon[0]) for polygon in geometry["coordinates"]]
    return []


@dataclass(frozen=True)
class Published:
    """A sent warning or all-clear as CAP names it."""

    broadcast: Broadcast
    identifier: str
    sender: str
    sent: str


def _sender(municipality: Municipality, settings: Settings) -> str:
    host = urlsplit(settings.public_url).hostname or "localhost"
    return f"{municipality.slug}@{host}"


def _published(municipality: Municipality, settings: Settings, broadcast: Broadcast) -> Published:
    moment = broadcast.approved_at or broadcast.created_at
    return Published(broadcast=broadcast, identifier=f"{municipality.slug}-{broadcast.id}",
                     sender=_sender(municipality, settings), sent=cap_time(moment, municipality.timezone))  # fmt: skip


def _is_published(broadcast: Broadcast | None, municipality_id: int | None) -> bool:
    return (
        broadcast is not None
        and broadcast.municipality_id == municipality_id
        and broadcast.kind in ("warning", "all_clear")
        and broadcast.status in PUBLISHED_STATUSES
    )


def _official(session: Session, broadcast_id: int | None) -> OfficialWarning | None:
    return session.exec(select(OfficialWarning).where(OfficialWarning.broadcast_id == broadcast_id)).first()


def _earlier(session: Session, broadcast: Broadcast, official: OfficialWarning | None) -> list[Broadcast]:
    """The published alerts this one follows, oldest first: the official warning's earlier versions, or for the
    hub's own all-clear the warning it ends."""
    if official is not None:
        ids = session.exec(
            select(OfficialWarning.broadcast_id).where(
                OfficialWarning.municipality_id == official.municipality_id,
                OfficialWarning.official_id == official.official_id,
                OfficialWarning.version < official.version,
                col(OfficialWarning.broadcast_id).is_not(None),
            )
        ).all()
    else:
        ids = [broadcast.follows_id] if broadcast.follows_id else []
    found = [session.get(Broadcast, broadcast_id) for broadcast_id in ids]
    published = [b for b in found if b is not None and _is_published(b, broadcast.municipality_id)]
    return sorted(published, key=lambda b: b.id or 0)


def _areas(session: Session, info: Element, municipality: Municipality, broadcast: Broadcast) -> None:
    query = select(District).where(District.municipality_id == municipality.id)
    if broadcast.district_ids:
        query = query.where(col(District.id).in_(broadcast.district_ids))
    districts = session.exec(query.order_by(col(District.name))).all()
    shapes = {row.district_id: row.geometry for row in session.exec(
        select(DistrictShape).where(DistrictShape.municipality_id == municipality.id)
    )}  # fmt: skip
    relay = session.get(WarningRelay, municipality.id)
    shaped = [
        (district, shapes[district.id]) for district in districts if district.id is not None and district.id in shapes
    ]
    groups: list[tuple[str, list[str]]]
    if shaped:
        groups = [(f"{municipality.name}, {district.name}", polygons(shape)) for district, shape in shaped]
    else:
        names = ", ".join(district.name for district in districts) if broadcast.district_ids else ""
        groups = [(f"{municipality.name}{', ' + names if names else ''}", [])]
    for description, rings in groups:
        area = _cap(info, "area")
        _cap(area, "areaDesc", description)
        for ring in rings:
            _cap(area, "polygon", ring)
        if relay is not None:
            # The regional key the German warning systems use (warnVerwaltungsbereiche).
            geocode = _cap(area, "geocode")
            _cap(geocode, "valueName", "ARS")
            _cap(geocode, "value", relay.ars)


def alert(session: Session, *, settings: Settings, municipality: Municipality, broadcast: Broadcast) -> bytes:
    """The broadcast as a CAP 1.2 alert document."""
    official = _official(session, broadcast.id)
    published = _published(municipality, settings, broadcast)
    earlier = _earlier(session, broadcast, official)
    cleared = broadcast.kind == "all_clear"
    # Unprefixed names under a default namespace, as CAP documents are usually written.
    root = Element("alert", xmlns=CAP_NAMESPACE)
    _cap(root, "identifier", published.identifier)
    _cap(root, "sender", published.sender)
    _cap(root, "sent", published.sent)
    _cap(root, "status", official.status if official and official.status in ("Actual", "Exercise", "Test")
         else "Actual")  # fmt: skip
    _cap(root, "msgType", "Cancel" if cleared else "Update" if earlier else "Alert")
    if official is not None:
        _cap(root, "source", official.sender_name or official.sender)
    _cap(root, "scope", "Public")
    if earlier:
        triples = (_published(municipality, settings, before) for before in earlier)
        _cap(root, "references", " ".join(f"{p.sender},{p.identifier},{p.sent}" for p in triples))
    info = _cap(root, "info")
    _cap(info, "language", "de-DE")
    categories = [c for c in (official.categories if official else []) if c in CATEGORIES] or ["Safety"]
    for category in categories:
        _cap(info, "category", category)
    _cap(info, "event", (official.event if official else "") or broadcast.title)
    if cleared:
        _cap(info, "responseType", "AllClear")
    _cap(info, "urgency", "Past" if cleared else official.urgency if official else "Immediate")
    _cap(info, "severity", "Minor" if cleared else broadcast.severity or "Unknown")
    _cap(info, "certainty", official.certainty if official and not cleared else "Observed")
    _cap(info, "senderName", municipality.name)
    _cap(info, "headline", broadcast.title)
    body = str(broadcast.texts.get("de", {}).get("body", ""))
    _cap(info, "description", (official.description if official else "") or body)
    if official is not None and official.instruction and not cleared:
        _cap(info, "instruction", official.instruction)
    if official is not None:
        _cap(info, "web", official_page(municipality, settings, official))
    _areas(session, info, municipality, broadcast)
    return tostring(root, encoding="utf-8", xml_declaration=True)


def official_page(municipality: Municipality, settings: Settings, official: OfficialWarning) -> str:
    return f"{settings.public_url.rstrip('/')}/public/{municipality.slug}/amtliche-warnungen/{official.id}"


def alert_url(municipality: Municipality, settings: Settings, broadcast: Broadcast) -> str:
    return f"{settings.public_url.rstrip('/')}/public/{municipality.slug}/cap/{broadcast.id}.xml"


def published_alert(session: Session, *, settings: Settings, slug: str, broadcast_id: int) -> bytes:
    """One sent warning's CAP alert, for its public address; nothing that has not gone out."""
    municipality = get_municipality(session, slug=slug)
    broadcast = session.get(Broadcast, broadcast_id)
    if not _is_published(broadcast, municipality.id):
        raise NotFound(N_("Diese Warnung gibt es hier nicht."))
    assert broadcast is not None
    return alert(session, settings=settings, municipality=municipality, broadcast=broadcast)


def _atom(parent: Element, tag: str, text: str | None = None, **attributes: str) -> Element:
    element = SubElement(parent, tag, attributes)
    if text is not None:
        element.text = text
    return element


def feed(session: Session, *, settings: Settings, slug: str) -> bytes:
    """The town's Atom feed (RFC 4287) of the warnings and all-clears it sent lately, newest first, in its own time
    (RFC 3339 with the town's offset, as in the alerts)."""
    municipality = get_municipality(session, slug=slug)
    broadcasts = session.exec(
        select(Broadcast)
        .where(
            Broadcast.municipality_id == municipality.id,
            col(Broadcast.kind).in_(("warning", "all_clear")),
            col(Broadcast.status).in_(PUBLISHED_STATUSES),
            col(Broadcast.created_at) >= utcnow() - timedelta(days=FEED_DAYS),
        )
        .order_by(col(Broadcast.id).desc())
        .limit(FEED_ENTRIES)
    ).all()
    base = settings.public_url.rstrip("/")
    self_url = f"{base}/public/{municipality.slug}/cap.atom"
    root = Element("feed", xmlns=ATOM_NAMESPACE)
    _atom(root, "id", self_url)
    _atom(root, "title", gettext_for(municipality.language).gettext(FEED_TITLE).format(municipality=municipality.name))
    newest = max((b.approved_at or b.created_at for b in broadcasts), default=municipality.created_at)
    _atom(root, "updated", cap_time(newest, municipality.timezone))
    _atom(root, "link", rel="self", href=self_url, type=ATOM_MEDIA_TYPE)
    author = _atom(root, "author")
    _atom(author, "name", municipality.name)
    for broadcast in broadcasts:
        url = alert_url(municipality, settings, broadcast)
        entry = _atom(root, "entry")
        _atom(entry, "id", url)
        _atom(entry, "title", broadcast.title)
        _atom(entry, "updated", cap_time(broadcast.approved_at or broadcast.created_at, municipality.timezone))
        _atom(entry, "link", rel="alternate", href=url, type=CAP_MEDIA_TYPE)
        _atom(entry, "category", term=broadcast.kind)
        _atom(entry, "summary", str(broadcast.texts.get("de", {}).get("body", ""))[:500])
    return tostring(root, encoding="utf-8", xml_declaration=True)
