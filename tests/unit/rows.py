"""For the tests that walk every route of the app: the routes, and one real row of each kind a path can name.

`PATH_VALUES` maps a path parameter's name to the row that fills it, and `BODIES` a request
body's model to a valid body. A route with a name or body that is not in the tables makes the
tests fail with a message saying where to add it: a new page or API route must not slip past
the role matrix because nobody knew how to call it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, get_type_hints

from fastapi.dependencies.models import Dependant
from fastapi.responses import StreamingResponse
from fastapi.routing import RouteContext, iter_route_contexts
from pydantic import BaseModel
from sqlmodel import Session, col, select

from channels.base import Attachment as InboundAttachment
from channels.base import InboundMessage
from hub.app import create_app
from hub.broadcasts.api import DraftIn, EmergencyIn, RescheduleIn
from hub.broadcasts.models import Broadcast
from hub.consultations import service as consultations
from hub.consultations.api import BookingIn, MoveIn, RecordingIn, SeriesIn
from hub.consultations.models import Booking, ConsultationSeries
from hub.contacts.api import ContactNameIn, MergeIn
from hub.contacts.models import Contact
from hub.contacts.service import resolve_contact
from hub.inbox import bulk, views
from hub.inbox.models import Attachment, CannedReply, Conversation, Label
from hub.inbox.schemas import BulkIn, ConversationPatch, ReplyIn, SnoozeIn, TextIn
from hub.inbox.service import open_conversation
from hub.official_warnings.api import RelayIn
from hub.open311 import service as open311
from hub.open311.api import ClientIn
from hub.open311.models import Open311Client
from hub.problems import service as problems
from hub.problems.api import CategoryIn, MergeReportsIn, PublicStatusIn, ShapeIn
from hub.problems.models import ProblemPhoto, ProblemReport
from hub.settings import Settings
from hub.subscribers.api import DistrictIn, TopicIn
from hub.subscribers.catalogue import list_districts, list_topics
from hub.subscribers.models import District, Topic
from hub.tenancy import service as tenancy
from hub.tenancy.api import FourEyesIn
from hub.tenancy.models import ApiToken, ChannelAccount, StaffUser, Team
from tests.unit.db import Town, receive
from tests.unit.web import staff_user


def app_routes(*prefixes: str) -> list[RouteContext]:
    """The app's endpoints (routers included, as they are served) whose path starts with one of `prefixes`."""
    return [
        route
        for route in iter_route_contexts(create_app().routes)
        if route.methods and route.path and route.path.startswith(prefixes) and getattr(route, "dependant", None)
    ]


# Pages anyone may open before signing in, and signing out.
PUBLIC_STAFF_PATHS = ("/app/login", "/app/logout", "/app/password/")


def staff_routes() -> list[RouteContext]:
    """Every route of the app under /app except sign-in, sign-out and password reset."""
    routes = [route for route in app_routes("/app") if not route.path.startswith(PUBLIC_STAFF_PATHS)]
    assert routes, "create_app() has no staff pages at all"
    return routes


def streams(route: RouteContext) -> bool:
    """A stream of server-sent events runs until the browser leaves, which the test client never does."""
    try:
        returned = get_type_hints(route.endpoint).get("return")
    except NameError:
        return False
    return isinstance(returned, type) and issubclass(returned, StreamingResponse)


def permissions(dependant: Dependant) -> Iterator[str]:
    """The permissions of every require(...) among the route's dependencies, however deep."""
    for dependency in dependant.dependencies:
        permission = getattr(dependency.call, "permission", None)
        if permission is not None:
            yield permission
        yield from permissions(dependency)


def permission_of(route: RouteContext) -> str:
    found = list(permissions(route.dependant))
    if route.path.startswith("/api/"):
        where = (
            "every /api/v1 route declares exactly one Depends(require_permission(<permission>)) from "
            "hub.tenancy.auth, with a permission of the table in hub/tenancy/roles.py; a route anyone may "
            "call without a token is added to PUBLIC_API_ROUTES in tests/unit/rows.py"
        )
    else:
        where = "every staff page declares exactly one Depends(require(<permission>)) from hub.web.auth"
    assert len(found) == 1, f"{sorted(route.methods)} {route.path} declares {len(found)} permissions {found}; {where}"
    return found[0]


# The API routes a citizen calls without a token (signing up), by (method, path); each is named here
# on purpose, so that a route added under /api/v1 without a permission fails the role matrix.
PUBLIC_API_ROUTES = frozenset(
    {
        ("GET", "/api/v1/public/{slug}/topics"),
        ("GET", "/api/v1/public/{slug}/districts"),
        ("POST", "/api/v1/public/{slug}/subscriptions/phone"),
        ("POST", "/api/v1/public/{slug}/subscriptions/phone/verify"),
        ("POST", "/api/v1/public/{slug}/subscriptions/email"),
        ("GET", "/api/v1/public/{slug}/subscriptions/email/confirm"),
        ("POST", "/api/v1/public/{slug}/subscriptions/email/confirm"),
        ("GET", "/api/v1/public/{slug}/problems"),
        ("GET", "/api/v1/public/{slug}/problems/photos/{photo_id}"),
    }
)


def is_public(route: RouteContext) -> bool:
    return all((method, route.path) in PUBLIC_API_ROUTES for method in route.methods - {"HEAD"})


def api_routes() -> list[RouteContext]:
    """Every route under /api/v1 that needs a token: all but those in PUBLIC_API_ROUTES."""
    routes = [route for route in app_routes("/api/v1/") if not is_public(route)]
    assert routes, "create_app() has no API routes at all"
    return routes


@dataclass(frozen=True)
class Rows:
    """A town's rows; `secret` is written into them, so a page that leaks them to another town shows it."""

    town: Town
    secret: str
    conversation: Conversation
    attachment: Attachment
    broadcast: Broadcast
    user: StaffUser
    team: Team
    account: ChannelAccount
    label: Label
    canned_reply: CannedReply
    topic: Topic
    district: District
    api_token: ApiToken
    other_contact: Contact  # a second citizen, for what takes two (merging)
    series: ConsultationSeries
    booking: Booking
    problem_report: ProblemReport  # the conversation's, with a released photo
    other_report: ProblemReport  # the second citizen's, for merging
    photo: ProblemPhoto
    open311_client: Open311Client
    bulk_change: int  # the audit id of a bulk assignment, to undo
    saved_view: int  # the colleague's view of the inbox, shared with their team

    @property
    def contact_id(self) -> int:
        return self.conversation.contact_id


def make_rows(session: Session, settings: Settings, town: Town, secret: str) -> Rows:
    account = town.accounts["email"]
    inbound = InboundMessage(
        provider_id=f"<{secret}@buerger.example>", sender=f"{secret.lower()}@buerger.example",
        text=f"Frage {secret}", subject=f"Betreff {secret}", sender_name=f"Bürgerin {secret}",
        attachments=(InboundAttachment(filename=f"{secret}.pdf", content_type="application/pdf", data=b"%PDF-1.4"),),
    )  # fmt: skip
    [result] = receive(session, settings, account, inbound)
    assert result.outcome.startswith("stored"), result.outcome
    conversation = _newest(session, Conversation, town.id)
    attachment = _newest(session, Attachment, town.id)
    broadcast = Broadcast(
        municipality_id=town.id, kind="survey", title=f"Umfrage {secret}",
        texts={"de": {"body": f"Frage {secret}?"}}, options=["Ja", "Nein"],
    )  # fmt: skip
    label = Label(municipality_id=town.id, name=f"Etikett {secret}")
    canned = CannedReply(municipality_id=town.id, title=f"Vorlage {secret}", body="Guten Tag")
    session.add_all([broadcast, label, canned])
    user = staff_user(session, town, "staff", email=f"kollege-{secret.lower()}@{town.municipality.slug}.example")
    team = tenancy.create_team(session, municipality_id=town.id, name=f"Team {secret}")
    tenancy.create_api_token(session, user=user, name=f"Skript {secret}")
    other = resolve_contact(
        session, municipality_id=town.id, kind="email", address=f"{secret.lower()}-zwei@buerger.example",
        display_name=f"Nachbarin {secret}",
    )  # fmt: skip
    series = consultations.define_series(session, municipality=town.municipality, draft=consultations.SeriesDraft(
        title=f"Sprechstunde {secret}", rrule="FREQ=DAILY", first_day=date.today(), start_time="10:00",
        end_time="12:00", host_user_id=user.id, closes_hours_before=0,
    ))  # fmt: skip
    session.commit()
    [slot, *_] = _slots_written(session, town, series)
    booking = consultations.book(
        session, municipality=town.municipality, slot_id=slot.slot_id, contact_id=other.id, name=f"Bürger {secret}"
    )  # fmt: skip
    session.commit()
    report, other_report, photo = _problem_rows(session, town, conversation, other, attachment)
    client, _ = open311.issue_key(session, municipality_id=town.id, name=f"App {secret}")
    change = bulk.assign_many(
        session, municipality_id=town.id, actor_id=user.id or 0, conversation_ids=[conversation.id or 0],
        assignee_id=user.id,
    )  # fmt: skip
    user.team_id = team.id
    view = views.save_view(session, owner=user, name=f"Ansicht {secret}", query="status=open", for_team=True)
    session.commit()
    return Rows(
        town=town, secret=secret, conversation=conversation, attachment=attachment,
        broadcast=broadcast, user=user, team=team, account=account, label=label, canned_reply=canned,
        topic=list_topics(session, municipality_id=town.id)[0],
        district=list_districts(session, municipality_id=town.id)[0],
        api_token=_newest(session, ApiToken, town.id), other_contact=other, series=series, booking=booking,
        problem_report=report, other_report=other_report, photo=photo, open311_client=client,
        bulk_change=change.id, saved_view=view.id,
    )  # fmt: skip


def _problem_rows(
    session: Session, town: Town, conversation: Conversation, other: Contact, attachment: Attachment
) -> tuple[ProblemReport, ProblemReport, ProblemPhoto]:
    """Two reports of one category at one point, the first with a released photo (standing in for a checked one)."""
    category = problems.create_category(session, municipality_id=town.id, key="laterne", name_de="Beleuchtung")
    assert other.id is not None
    second = open_conversation(session, account=town.accounts["email"], contact_id=other.id, subject=None)
    reports = []
    for case in (conversation, second):
        report = problems.open_report(session, conversation=case)
        report.category_id, report.lat, report.lon, report.photos_released = category.id, 51.015, 10.015, True
        reports.append(report)
    assert reports[0].id is not None and attachment.id is not None
    photo = ProblemPhoto(
        municipality_id=town.id, report_id=reports[0].id, attachment_id=attachment.id, width=1, height=1,
        display=b"\xff\xd8\xff\xd9",
    )  # fmt: skip
    session.add_all([*reports, photo])
    session.commit()
    return reports[0], reports[1], photo


def _slots_written(session: Session, town: Town, series: ConsultationSeries) -> list[consultations.FreeSlot]:
    """The series' free slots, once its sessions in the booking window are written."""
    consultations.ensure_sessions(session, series=series, municipality=town.municipality)
    return consultations.free_slots(session, series=series)


def _newest(session: Session, model: Any, municipality_id: int) -> Any:
    return session.exec(
        select(model).where(model.municipality_id == municipality_id).order_by(col(model.id).desc())
    ).first()


# Path parameter name -> the row id (or value) that fills it.
PATH_VALUES: dict[str, Callable[[Rows], object]] = {
    "conversation_id": lambda rows: rows.conversation.id,
    "attachment_id": lambda rows: rows.attachment.id,
    "contact_id": lambda rows: rows.contact_id,
    "broadcast_id": lambda rows: rows.broadcast.id,
    "user_id": lambda rows: rows.user.id,
    "team_id": lambda rows: rows.team.id,
    "account_id": lambda rows: rows.account.id,
    "label_id": lambda rows: rows.label.id,
    "canned_id": lambda rows: rows.canned_reply.id,
    "topic_id": lambda rows: rows.topic.id,
    "district_id": lambda rows: rows.district.id,
    "token_id": lambda rows: rows.api_token.id,
    "slug": lambda rows: rows.town.municipality.slug,
    "report": lambda _rows: "messages",
    "series_id": lambda rows: rows.series.id,
    "slot_id": lambda rows: rows.booking.slot_id,
    "booking_id": lambda rows: rows.booking.id,
    "session_id": lambda rows: rows.booking.session_id,
    "report_id": lambda rows: rows.problem_report.id,
    "photo_id": lambda rows: rows.photo.id,
    "client_id": lambda rows: rows.open311_client.id,
    "change_id": lambda rows: rows.bulk_change,
    "view_id": lambda rows: rows.saved_view,
}
# Request body model -> a valid body, so that a write reaches its handler (and the town check
# there) instead of stopping at validation; ids in it come from `rows`, like the path's.
BODIES: dict[type[BaseModel], Callable[[Rows], dict[str, object]]] = {
    DraftIn: lambda _rows: {"kind": "announcement", "title": "Probe", "texts": {"de": {"body": "Probe"}}},
    RescheduleIn: lambda _rows: {"starts_at": "2031-06-01T18:00:00+02:00", "where": "Rathaus"},
    TextIn: lambda _rows: {"text": "Probe"},
    ReplyIn: lambda _rows: {"text": "Probe"},
    RelayIn: lambda _rows: {"ars": "091620000000", "actions": {"MOWAS": {"Extreme": "send"}}},
    ConversationPatch: lambda rows: {"status": "pending", "assignee_id": rows.user.id, "team_id": rows.team.id},
    BulkIn: lambda rows: {"action": "assign", "value": rows.user.id, "ids": [rows.conversation.id]},
    SnoozeIn: lambda _rows: {"day": (date.today() + timedelta(days=2)).isoformat(), "at": "09:30"},
    MergeIn: lambda rows: {"other_contact_id": rows.other_contact.id},
    ContactNameIn: lambda _rows: {"display_name": "Probe"},
    TopicIn: lambda _rows: {"key": "probe", "name_de": "Probe"},
    DistrictIn: lambda _rows: {"key": "probe", "name": "Probe"},
    SeriesIn: lambda rows: {
        "title": "Probe",
        "rrule": "FREQ=WEEKLY;BYDAY=MO",
        "first_day": "2030-01-07",
        "start_time": "09:00",
        "end_time": "10:00",
        "host_user_id": rows.user.id,
    },
    BookingIn: lambda _rows: {"name": "Probe", "email": "probe@buerger.example"},
    MoveIn: lambda _rows: {"day": "2030-01-08", "start_time": "09:00"},
    RecordingIn: lambda _rows: {"url": "https://video.example/aufzeichnung"},
    CategoryIn: lambda _rows: {"key": "probe", "name_de": "Probe"},
    ShapeIn: lambda _rows: {
        "geometry": {"type": "Polygon", "coordinates": [[[10, 51], [10.1, 51], [10.1, 51.1], [10, 51.1], [10, 51]]]}
    },
    MergeReportsIn: lambda rows: {"source_ids": [rows.other_report.id]},
    PublicStatusIn: lambda _rows: {"text": "In Bearbeitung", "photos_released": True},
    ClientIn: lambda _rows: {"name": "Probe-App"},
    FourEyesIn: lambda _rows: {"required": False},
    EmergencyIn: lambda _rows: {"reason": "Probe"},
}


def body(route: RouteContext, rows: Rows) -> dict[str, object] | None:
    """A valid JSON body for the route, with ids from `rows`; None if it takes none."""
    fields = route.dependant.body_params
    if not fields:
        return None
    [field] = fields
    model = field.field_info.annotation
    assert model in BODIES, (
        f"{sorted(route.methods)} {route.path}: no test body for {model}; "
        "add a valid one to BODIES in tests/unit/rows.py"
    )
    return BODIES[model](rows)


# Names no row can fill (one-time secrets); routes that use them are skipped by the walks.
UNFILLABLE = frozenset({"token"})
_PARAMETER = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def parameters(path: str) -> list[str]:
    return _PARAMETER.findall(path)


def fill(path: str, rows: Rows, *, unfillable: str | None = None) -> str | None:
    """The path with each parameter filled from `rows`; None if it needs a value no row has.

    With `unfillable`, such parameters get that value instead (for checks that refuse a request
    before its parameters are looked at, such as the CSRF check).
    """
    names = parameters(path)
    unknown = [name for name in names if name not in PATH_VALUES and name not in UNFILLABLE]
    assert not unknown, (
        f"{path}: no test row for the path parameter(s) {unknown}; add them to PATH_VALUES in tests/unit/rows.py "
        "(or to UNFILLABLE if no row can stand for them)"
    )
    if unfillable is None and any(name in UNFILLABLE for name in names):
        return None

    def value(found: re.Match[str]) -> str:
        name = found.group(1)
        return (unfillable or "") if name in UNFILLABLE else str(PATH_VALUES[name](rows))

    return _PARAMETER.sub(value, path)
