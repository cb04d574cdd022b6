"""Keyword-only services of Open311 GeoReport v2: client keys, the service list, filing a request, and requests.

A service is a problem category of the town (service_code = its key); a request is a problem
report, filed on a conversation of its own through the Mängelmelder's services, and its
service_request_id is the conversation's public reference. What the public may see of a report
is what Open311 shows: no names, contacts or texts; photos only once staff released them.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from hub.contacts.models import Contact
from hub.contacts.service import resolve_contact
from hub.db import utcnow
from hub.errors import Forbidden, InvalidInput, NotFound
from hub.i18n import N_
from hub.inbox.models import Conversation, Message
from hub.inbox.service import open_conversation
from hub.open311.models import Open311Client
from hub.problems import service as problems
from hub.problems.models import ProblemCategory, ProblemPhoto, ProblemReport
from hub.problems.places import geocode
from hub.settings import Settings
from hub.tenancy.models import ChannelAccount, Municipality, Team
from hub.tenancy.service import channel_reaching

KEY_PREFIX = "o311_"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-12-07T00:00:00Z"  # when the endpoint's methods last changed (Service Discovery)
MAX_DESCRIPTION_CHARS = 4000  # GeoReport v2, POST Service Request: description
# GET Service Requests: the default and the widest span of requested_datetime.
DEFAULT_SPAN = MAX_SPAN = timedelta(days=90)
MAX_REQUESTS = 1000  # per answer, newest first; the spec lets a server limit it
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# --- client keys ---------------------------------------------------------------------------------


def issue_key(
    session: Session, *, municipality_id: int, name: str, key: str | None = None
) -> tuple[Open311Client, str]:
    """A new client app and its API key, which is shown once (only its digest is kept).

    `key` is given only by the demo, whose key docs/it/schnittstellen.md prints; otherwise it is drawn at random.
    """
    if not name.strip():
        raise InvalidInput(N_("Der Name der Open311-Anwendung fehlt."))
    key = key or KEY_PREFIX + secrets.token_urlsafe(24)
    client = Open311Client(municipality_id=municipality_id, name=name.strip()[:120], key_sha256=_digest(key))
    session.add(client)
    session.flush()
    return client, key


def list_clients(session: Session, *, municipality_id: int) -> list[Open311Client]:
    return list(
        session.exec(
            select(Open311Client)
            .where(Open311Client.municipality_id == municipality_id)
            .order_by(col(Open311Client.id))
        )
    )


def revoke_client(session: Session, *, municipality_id: int, client_id: int) -> Open311Client:
    client = session.get(Open311Client, client_id)
    if client is None or client.municipality_id != municipality_id:
        raise NotFound(N_("Die Open311-Anwendung {client_id} gibt es nicht."), client_id=client_id)
    client.revoked_at = client.revoked_at or utcnow()
    session.add(client)
    session.flush()
    return client


def client_for_key(session: Session, *, municipality_id: int, api_key: str | None) -> Open311Client:
    """The app whose valid key this is for the town; a missing, unknown or revoked key is refused (403)."""
    if not api_key:
        raise Forbidden(N_("api_key fehlt: Anfragen anlegen dürfen nur Anwendungen mit einem Schlüssel der Gemeinde."))
    client = session.exec(select(Open311Client).where(Open311Client.key_sha256 == _digest(api_key))).first()
    if client is None or client.municipality_id != municipality_id or client.revoked_at is not None:
        raise Forbidden(N_("Dieser api_key gilt nicht (mehr) für diese Gemeinde."))
    client.last_used_at = utcnow()
    session.add(client)
    return client


# --- services ------------------------------------------------------------------------------------


def discovery(*, settings: Settings, town: Municipality, fields: Mapping[str, str]) -> dict[str, Any]:
    """The town's endpoint as Service Discovery describes it."""
    url = settings.public_url.rstrip("/")
    return {
        "changeset": CHANGESET,
        "contact": N_("{town}, über {url}").format(town=town.name, url=url),
        "key_service": N_("Schlüssel für Anwendungen gibt die Verwaltung der Gemeinde aus."),
        "endpoints": [
            {"specification": SPECIFICATION, "url": f"{url}/open311/v2/{town.slug}", "changeset": CHANGESET,
             "type": "production", "formats": ["text/xml", "application/json"]}
        ],
    }  # fmt: skip


def services(session: Session, *, town: Municipality, fields: Mapping[str, str]) -> list[dict[str, Any]]:
    """The town's problem categories as Open311 services; none needs more fields than the spec's own."""
    assert town.id is not None
    municipality_id = town.id
    teams = {team.id: team.name for team in session.exec(select(Team).where(Team.municipality_id == municipality_id))}
    return [
        {
            "service_code": category.key,
            "service_name": category.name_de,
            "description": category.name_de,
            "metadata": False,
            "type": "realtime",
            "keywords": ", ".join([category.key, *category.labels]),
            "group": teams.get(category.team_id, "Mängelmelder"),
        }
        for category in problems.list_categories(session, municipality_id=municipality_id)
    ]


def service_definition(
    session: Session, *, town: Municipality, fields: Mapping[str, str], service_code: str
) -> dict[str, Any]:
    assert town.id is not None
    category = _category(session, town.id, service_code)
    return {"service_code": category.key, "attributes": []}


def _category(session: Session, municipality_id: int, service_code: str | None) -> ProblemCategory:
    if not service_code:
        raise InvalidInput(N_("service_code fehlt."))
    category = problems.find_category(session, municipality_id=municipality_id, word=service_code)
    if category is None:
        raise NotFound(N_("Den service_code {code!r} gibt es nicht."), code=service_code)
    return category


# --- filing a request ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Filed:
    reference: str
    conversation_id: int


def _point(form: Mapping[str, str]) -> tuple[float, float] | None:
    lat, lon = form.get("lat", "").strip(), form.get("long", "").strip()
    if not lat and not lon:
        return None
    try:
        return float(lat), float(lon)
    except ValueError:
        raise InvalidInput(N_("lat und long müssen beide als Zahlen angegeben werden (WGS 84).")) from None


def _reporter(session: Session, municipality_id: int, form: Mapping[str, str]) -> tuple[Contact, ChannelAccount]:
    """Who reported it, and the channel an answer goes out on: mail if given, else SMS, else the town's first."""
    name = " ".join(part for part in (form.get("first_name", "").strip(), form.get("last_name", "").strip()) if part)
    email, phone = form.get("email", "").strip().lower(), form.get("phone", "").strip().replace(" ", "")
    for kind, address in (("email", email if "@" in email else ""), ("phone", phone if E164.match(phone) else "")):
        account = channel_reaching(session, municipality_id=municipality_id, identity=kind) if address else None
        if account is not None:
            contact = resolve_contact(
                session, municipality_id=municipality_id, kind=kind, address=address, display_name=name or None
            )
            return contact, account
    account = session.exec(
        select(ChannelAccount)
        .where(ChannelAccount.municipality_id == municipality_id, col(ChannelAccount.active).is_(True))
        .order_by(col(ChannelAccount.id))
    ).first()
    if account is None:
        raise InvalidInput(N_("Die Gemeinde nimmt noch keine Meldungen an: sie hat keinen Kanal eingerichtet."))
    contact = Contact(municipality_id=municipality_id, display_name=name or None)
    session.add(contact)
    session.flush()
    return contact, account


def file_request(
    session: Session, *, settings: Settings, town: Municipality, fields: Mapping[str, str]
) -> list[dict[str, Any]]:
    """POST Service Request: the client's key checked, then its answer with the new request's id."""
    assert town.id is not None
    client = client_for_key(session, municipality_id=town.id, api_key=fields.get("api_key"))
    filed = file_report(session, settings=settings, municipality=town, client=client, form=fields)
    notice = N_("Ihre Meldung hat das Aktenzeichen {reference}; unter dieser Nummer sehen Sie ihren Stand.")
    return [{"service_request_id": filed.reference, "service_notice": notice.format(reference=filed.reference),
             "account_id": None}]  # fmt: skip


def file_report(
    session: Session, *, settings: Settings, municipality: Municipality, client: Open311Client, form: Mapping[str, str]
) -> Filed:
    """A problem report on a new conversation, from a POST Service Request's fields; refusals store nothing."""
    assert municipality.id is not None
    category = _category(session, municipality.id, form.get("service_code"))
    description = form.get("description", "").strip()
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise InvalidInput(N_("description ist zu lang: höchstens {limit} Zeichen."), limit=MAX_DESCRIPTION_CHARS)
    point, address = _point(form), None
    if point is None and form.get("address_string", "").strip():
        place = geocode(session, settings=settings, municipality=municipality, address=form["address_string"])
        point, address = (place.lat, place.lon), place.address
    if point is None:
        raise InvalidInput(
            N_("Der Ort fehlt: bitte lat und long oder address_string angeben (address_id kennen wir nicht).")
        )
    contact, account = _reporter(session, municipality.id, form)
    assert contact.id is not None and account.id is not None
    conversation = open_conversation(
        session, account=account, contact_id=contact.id, subject=f"{category.name_de} (Open311: {client.name})"
    )
    assert conversation.id is not None
    media = form.get("media_url", "").strip()
    body = "\n\n".join(part for part in (description or category.name_de, media and f"Foto: {media}") if part)
    now = utcnow()
    session.add(
        Message(
            municipality_id=municipality.id, conversation_id=conversation.id, channel_account_id=account.id,
            direction="inbound", body=body, created_at=now,
        )
    )  # fmt: skip
    # The response clock runs from the request, as it would from a message.
    conversation.last_inbound_at = conversation.last_activity_at = now
    report = problems.open_report(session, conversation=conversation)
    problems.set_place(
        session, settings=settings, municipality=municipality, report=report, lat=point[0], lon=point[1],
        address=address or form.get("address_string", "").strip() or None,
    )  # fmt: skip
    problems.set_category(session, report=report, category=category)
    return Filed(reference=conversation.reference, conversation_id=conversation.id)


# --- requests ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """GET Service Requests' filters; `ids` (service_request_id) overrides the others, as the spec says."""

    ids: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    status: str | None = None  # open or closed


def parse_query(params: Mapping[str, str]) -> Query:
    def listed(name: str) -> tuple[str, ...]:
        return tuple(part.strip() for part in params.get(name, "").split(",") if part.strip())

    status = params.get("status", "").strip().lower() or None
    if status not in (None, "open", "closed"):
        raise InvalidInput(N_("status ist open oder closed."))
    return Query(
        ids=listed("service_request_id"), service_codes=listed("service_code"),
        start=_moment(params.get("start_date"), "start_date"), end=_moment(params.get("end_date"), "end_date"),
        status=status,
    )  # fmt: skip


def _moment(text: str | None, name: str) -> datetime | None:
    if not text or not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidInput(N_("{name} ist kein Zeitpunkt nach ISO 8601 mit Zeitzone."), name=name)
    return moment


def find_requests(
    session: Session, *, settings: Settings, town: Municipality, fields: Mapping[str, str]
) -> list[dict[str, Any]]:
    """GET Service Requests: the town's public reports as requests, newest first."""
    return requests_of(session, settings=settings, municipality=town, query=parse_query(fields))


def requests_of(
    session: Session, *, settings: Settings, municipality: Municipality, query: Query
) -> list[dict[str, Any]]:
    """The town's public reports that match `query` as Open311 requests, newest first."""
    assert municipality.id is not None
    statement = (
        select(ProblemReport, Conversation, ProblemCategory, Team.name)
        .join(Conversation, col(Conversation.id) == ProblemReport.conversation_id)
        .join(ProblemCategory, col(ProblemCategory.id) == ProblemReport.category_id)
        .outerjoin(Team, col(Team.id) == Conversation.team_id)
        .where(ProblemReport.municipality_id == municipality.id, col(ProblemReport.public).is_(True))
        .order_by(col(Conversation.created_at).desc(), col(Conversation.id).desc())
        .limit(MAX_REQUESTS)
    )
    if query.ids:
        statement = statement.where(col(Conversation.reference).in_(query.ids))
    else:
        end = query.end or utcnow()
        start = query.start or end - DEFAULT_SPAN
        if end - start > MAX_SPAN:
            raise InvalidInput(N_("Zwischen start_date und end_date dürfen höchstens 90 Tage liegen."))
        statement = statement.where(col(Conversation.created_at) >= start, col(Conversation.created_at) <= end)
        if query.service_codes:
            statement = statement.where(col(ProblemCategory.key).in_([code.lower() for code in query.service_codes]))
        if query.status == "closed":
            statement = statement.where(Conversation.status == "resolved")
        elif query.status == "open":
            statement = statement.where(Conversation.status != "resolved")
    rows = session.exec(statement).all()
    released = [report.id for report, *_ in rows if report.photos_released and report.id is not None]
    photos: dict[int, int] = {}
    for report_id, photo_id in session.exec(
        select(ProblemPhoto.report_id, ProblemPhoto.id).where(col(ProblemPhoto.report_id).in_(released))
    ):
        photos.setdefault(report_id, photo_id or 0)
    zone = ZoneInfo(municipality.timezone)
    public = f"{settings.public_url.rstrip('/')}/api/v1/public/{municipality.slug}/problems/photos/"

    def when(moment: datetime | None) -> str | None:
        return moment.astimezone(zone).isoformat(timespec="seconds") if moment is not None else None

    return [
        {
            "service_request_id": conversation.reference,
            "status": "closed" if conversation.status == "resolved" else "open",
            "status_notes": report.public_status,
            "service_name": category.name_de,
            "service_code": category.key,
            "description": None,  # the citizen's own words are not public
            "agency_responsible": team,
            "service_notice": None,
            "requested_datetime": when(conversation.created_at),
            "updated_datetime": when(conversation.resolved_at or conversation.last_activity_at),
            "expected_datetime": None,
            "address": report.address,
            "address_id": None,
            "zipcode": None,
            "lat": report.lat,
            "long": report.lon,
            "media_url": f"{public}{photos[report.id]}" if report.id in photos else None,
        }
        for report, conversation, category, team in rows
    ]


def one_request(
    session: Session, *, settings: Settings, town: Municipality, fields: Mapping[str, str], request_id: str
) -> list[dict[str, Any]]:
    """GET Service Request: one request, in a list as the spec's examples have it."""
    found = requests_of(session, settings=settings, municipality=town, query=Query(ids=(request_id,)))
    if not found:
        raise NotFound(N_("Die Anfrage {request_id!r} gibt es nicht."), request_id=request_id)
    return found
