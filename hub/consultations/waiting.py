"""Department waiting rooms: citizens check in at session time, clerks call the next one, forward or close them.

A series' waiting room is its host team's (the department); a series held by a person is in
that person's team's room, or in a room of its own when they belong to none. The queue is
ordered by `queued_at`, the moment of checking in, which a forward keeps. "Call next" is a
single-winner claim: the row is picked with FOR UPDATE SKIP LOCKED on PostgreSQL, and taken
with a conditional UPDATE that only one clerk can win on either backend (SQLite has one writer
at a time, so the second clerk's UPDATE sees the first's and moves on to the next citizen).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from channels.registry import adapter_class
from hub.consultations import rooms
from hub.consultations.models import Booking, ConsultationSeries, ConsultationSession, ConsultationSlot
from hub.consultations.models import WaitingRoomEntry as Entry
from hub.consultations.reminders import reminder_account
from hub.consultations.web_booking import booking_links, link_token
from hub.contacts.models import Contact
from hub.db import utcnow
from hub.errors import Conflict, InvalidInput, NotFound
from hub.i18n import N_
from hub.inbox.service import queue_outbound
from hub.settings import Settings
from hub.templating import greeting, render_message
from hub.tenancy.models import Municipality, StaffUser, Team

# A citizen may check in this long before their slot, and until the session's end.
CHECK_IN_EARLY = timedelta(minutes=15)
# The estimate is the mean length of this many of the room's last consultations.
RECENT = 20
# Where a room has none yet: an open session's citizens are seen this long each.
OPEN_SESSION_MINUTES = 10
# How many citizens a clerk's claim tries before giving up (others won each of them).
CLAIM_TRIES = 10
OUTCOMES = {"done": "attended", "no_show": "no_show"}


@dataclass(frozen=True)
class QueueKey:
    """A waiting room: a department (team) or, for a series held by a person without one, the series'."""

    team_id: int | None
    series_id: int | None

    @property
    def key(self) -> str:
        return f"team-{self.team_id}" if self.team_id is not None else f"series-{self.series_id}"

    @classmethod
    def parse(cls, key: str) -> QueueKey:
        kind, _, number = key.partition("-")
        if kind not in ("team", "series") or not number.isdigit():
            raise InvalidInput(N_("Diesen Warteraum gibt es nicht."))
        return cls(int(number), None) if kind == "team" else cls(None, int(number))


def department_of(session: Session, series: ConsultationSeries) -> QueueKey:
    if series.host_team_id is not None:
        return QueueKey(series.host_team_id, None)
    host = session.get(StaffUser, series.host_user_id) if series.host_user_id else None
    if host is not None and host.team_id is not None:
        return QueueKey(host.team_id, None)
    return QueueKey(None, series.id)


def _where(queue: QueueKey) -> Any:
    if queue.team_id is not None:
        return col(Entry.team_id) == queue.team_id
    return (col(Entry.team_id).is_(None)) & (col(Entry.series_id) == queue.series_id)


def _queue_of(entry: Entry) -> QueueKey:
    return QueueKey(entry.team_id, None) if entry.team_id is not None else QueueKey(None, entry.series_id)


def _parts(session: Session, booking: Booking) -> tuple[ConsultationSlot, ConsultationSession, ConsultationSeries]:
    slot = session.get(ConsultationSlot, booking.slot_id)
    held = session.get(ConsultationSession, booking.session_id)
    series = session.get(ConsultationSeries, held.series_id) if held else None
    assert slot is not None and held is not None and series is not None
    return slot, held, series


def entry_of(session: Session, *, booking_id: int) -> Entry | None:
    return session.exec(select(Entry).where(Entry.booking_id == booking_id)).first()


def check_in(session: Session, *, booking: Booking, now: datetime | None = None) -> Entry:
    """The citizen's place in their department's waiting room; checking in again keeps the place."""
    now = now or utcnow()
    assert booking.id is not None
    entry = entry_of(session, booking_id=booking.id)
    if entry is not None:
        return entry
    if booking.status != "booked":
        raise Conflict(N_("Dieser Termin ist abgesagt oder schon vorbei."))
    slot, held, series = _parts(session, booking)
    if held.status != "scheduled" or now > held.ends_at:
        raise Conflict(N_("Dieser Termin ist abgesagt oder schon vorbei."))
    if now < slot.starts_at - CHECK_IN_EARLY:
        raise InvalidInput(N_("Der Warteraum öffnet 15 Minuten vor Ihrem Termin. Bitte kommen Sie dann wieder."))
    queue = department_of(session, series)
    assert series.id is not None
    entry = Entry(
        municipality_id=booking.municipality_id, booking_id=booking.id, series_id=series.id, team_id=queue.team_id,
        queued_at=now, checked_in_at=now,
    )  # fmt: skip
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class Place:
    """Where a waiting citizen is: how many are before them and about how many minutes that is."""

    ahead: int
    minutes: int

    @property
    def number(self) -> int:
        return self.ahead + 1


def _minutes_each(session: Session, entry: Entry) -> float:
    """The mean length of the room's last consultations, or the series' slot length before there are any."""
    recent = session.exec(
        select(Entry.called_at, Entry.done_at)
        .where(_where(_queue_of(entry)), col(Entry.done_at).is_not(None), col(Entry.called_at).is_not(None))
        .order_by(col(Entry.done_at).desc())
        .limit(RECENT)
    ).all()
    lengths = [(done - called).total_seconds() / 60 for called, done in recent if called and done]
    if lengths:
        return sum(lengths) / len(lengths)
    series = session.get(ConsultationSeries, entry.series_id)
    return float(series.slot_minutes if series and series.capacity == 1 else OPEN_SESSION_MINUTES)


def place_of(session: Session, entry: Entry) -> Place:
    ahead = session.exec(
        select(func.count())
        .select_from(Entry)
        .join(Booking, col(Booking.id) == Entry.booking_id)
        .where(
            _where(_queue_of(entry)),
            Entry.status == "waiting",
            Booking.status == "booked",
            (col(Entry.queued_at) < entry.queued_at)
            | ((col(Entry.queued_at) == entry.queued_at) & (col(Entry.id) < entry.id)),
        )
    ).one()
    return Place(ahead=int(ahead), minutes=round(int(ahead) * _minutes_each(session, entry)))


@dataclass(frozen=True)
class Called:
    """The citizen a clerk called in, and the message that tells them (to be sent once committed)."""

    entry: Entry
    booking: Booking
    message_id: int | None


def call_next(
    session: Session, *, settings: Settings, municipality_id: int, queue: QueueKey, staff_id: int,
    now: datetime | None = None,
) -> Called | None:  # fmt: skip
    """Calls the longest-waiting citizen of the room; None when nobody is waiting.

    Two clerks calling at once get two different citizens: each UPDATE only takes a row still
    waiting, and a clerk whose row another took tries the next one.
    """
    now = now or utcnow()
    tried: list[int] = []
    for _ in range(CLAIM_TRIES):
        # A booking cancelled while its citizen waited is passed over.
        candidate = session.exec(
            select(Entry.id)
            .join(Booking, col(Booking.id) == Entry.booking_id)
            .where(Entry.municipality_id == municipality_id, _where(queue), Entry.status == "waiting",
                   Booking.status == "booked", col(Entry.id).not_in(tried))
            .order_by(col(Entry.queued_at), col(Entry.id))
            .limit(1)
            .with_for_update(of=Entry, skip_locked=True)
        ).first()  # fmt: skip
        if candidate is None:
            return None
        taken = session.execute(
            update(Entry)
            .where(col(Entry.id) == candidate, col(Entry.status) == "waiting")
            .values(status="called", called_at=now, called_by_id=staff_id)
        )
        if taken.rowcount:  # type: ignore[attr-defined]
            entry = session.get(Entry, candidate, populate_existing=True)
            assert entry is not None
            booking = session.get(Booking, entry.booking_id)
            assert booking is not None
            return Called(entry, booking, _tell_called(session, settings, booking))
        tried.append(candidate)
    return None


def _tell_called(session: Session, settings: Settings, booking: Booking) -> int | None:
    """Queues "it is your turn" on the citizen's channel, with their way in; None if no channel reaches them."""
    account = reminder_account(session, booking)
    municipality = session.get(Municipality, booking.municipality_id)
    if account is None or account.id is None or municipality is None:
        return None
    contact = session.get(Contact, booking.contact_id)
    language = contact.language if contact else "de"
    _slot, _held, series = _parts(session, booking)
    page = booking_links(settings, municipality, link_token(booking, "phone"))["link"] + "/warteraum"
    context: dict[str, Any] = {
        **greeting(language, booking.name), "title": series.title, "reference": booking.reference,
        "join_link": rooms.citizen_link(session, booking=booking), "page": page,
        "short": adapter_class(account.kind).max_segments is not None,
    }  # fmt: skip
    message = queue_outbound(
        session, starting=(account.id, booking.contact_id), author=None, automated=True,
        text=render_message("consultation_called.txt.j2", language, **context),
        subject=render_message("consultation_called_subject.txt.j2", language, **context),
    )  # fmt: skip
    return message.id


def _entry(session: Session, municipality_id: int, booking_id: int) -> Entry:
    entry = entry_of(session, booking_id=booking_id)
    if entry is None or entry.municipality_id != municipality_id:
        raise NotFound(N_("Diese Person ist in keinem Warteraum."))
    return entry


def forward(
    session: Session, *, municipality_id: int, booking_id: int, team_id: int, note: str, staff_name: str
) -> Entry:
    """Moves the citizen to another department's room: their place's age stays, the note goes along."""
    entry = _entry(session, municipality_id, booking_id)
    if entry.status not in ("waiting", "called"):
        raise Conflict(N_("Diese Person ist schon fertig."))
    team = session.get(Team, team_id)
    if team is None or team.municipality_id != municipality_id:
        raise NotFound(N_("Diesen Warteraum gibt es nicht."))
    if team_id == entry.team_id:
        raise InvalidInput(N_("Die Person wartet schon in diesem Warteraum."))
    lines = [entry.note] if entry.note else []
    if note.strip():
        lines.append(f"{staff_name}: {note.strip()}")
    entry.forwarded_from_team_id, entry.team_id = entry.team_id, team_id
    entry.status, entry.called_at, entry.called_by_id = "waiting", None, None
    entry.note = "\n".join(lines) or None
    session.add(entry)
    return entry


def finish(
    session: Session, *, municipality_id: int, booking_id: int, outcome: str, now: datetime | None = None
) -> Entry:
    """Done or no-show: the entry closes, with its time, and the booking's status says how it went."""
    if outcome not in OUTCOMES:
        raise InvalidInput(N_("Bitte „erledigt“ oder „nicht erschienen“ wählen."))
    entry = _entry(session, municipality_id, booking_id)
    if entry.status in ("done", "no_show"):
        raise Conflict(N_("Diese Person ist schon fertig."))
    booking = session.get(Booking, booking_id)
    assert booking is not None
    entry.status, entry.done_at = outcome, now or utcnow()
    booking.status = OUTCOMES[outcome]
    session.add_all([entry, booking])
    return entry


# What the pages show


@dataclass(frozen=True)
class CitizenState:
    """The join page: where the citizen is, and their way in once called."""

    entry: Entry | None
    room_name: str
    place: Place | None
    join_link: str | None

    def version(self) -> str:
        """Changes whenever the page should show something else; the page's poll compares it."""
        if self.entry is None:
            return "none"
        place = self.place.number if self.place else 0
        return f"{self.entry.status}-{self.entry.team_id}-{place}-{self.place.minutes if self.place else 0}"


def room_name(session: Session, queue: QueueKey) -> str:
    if queue.team_id is not None:
        team = session.get(Team, queue.team_id)
        return team.name if team else ""
    series = session.get(ConsultationSeries, queue.series_id)
    return series.title if series else ""


def citizen_state(session: Session, *, booking: Booking, with_link: bool = True) -> CitizenState:
    """Where the citizen is; `with_link` makes their way in once called (a poll needs only the version)."""
    assert booking.id is not None
    entry = entry_of(session, booking_id=booking.id)
    if entry is None:
        return CitizenState(None, "", None, None)
    name = room_name(session, _queue_of(entry))
    if entry.status == "waiting":
        return CitizenState(entry, name, place_of(session, entry), None)
    link = rooms.citizen_link(session, booking=booking) if with_link and entry.status == "called" else None
    return CitizenState(entry, name, None, link)


@dataclass(frozen=True)
class Waiting:
    entry: Entry
    booking: Booking
    series: ConsultationSeries
    place: int
    forwarded_from: str | None


@dataclass(frozen=True)
class QueueView:
    queue: QueueKey
    name: str
    waiting: list[Waiting]
    called: list[Waiting]


def queues(session: Session, *, municipality_id: int) -> list[QueueView]:
    """Each department's room (every team, and series' own rooms with someone in them), with who waits and who is in."""
    open_entries = session.exec(
        select(Entry, Booking, ConsultationSeries)
        .join(Booking, col(Booking.id) == Entry.booking_id)
        .join(ConsultationSeries, col(ConsultationSeries.id) == Entry.series_id)
        .where(
            Entry.municipality_id == municipality_id,
            (col(Entry.status) == "called") | ((col(Entry.status) == "waiting") & (col(Booking.status) == "booked")),
        )
        .order_by(col(Entry.queued_at), col(Entry.id))
    ).all()
    teams = {team.id: team.name for team in session.exec(select(Team).where(Team.municipality_id == municipality_id))}
    keys = [QueueKey(team_id, None) for team_id in sorted(teams, key=lambda team_id: teams[team_id])]
    for entry, _booking, _series in open_entries:
        if entry.team_id is None and _queue_of(entry) not in keys:
            keys.append(_queue_of(entry))
    views = []
    for queue in keys:
        mine = [row for row in open_entries if _queue_of(row[0]) == queue]
        rows = [
            Waiting(entry, booking, series, place, teams.get(entry.forwarded_from_team_id or -1))
            for place, (entry, booking, series) in enumerate(
                sorted(mine, key=lambda row: row[0].status != "waiting"), start=1
            )
        ]
        views.append(QueueView(queue, room_name(session, queue),
                               [row for row in rows if row.entry.status == "waiting"],
                               [row for row in rows if row.entry.status == "called"]))  # fmt: skip
    return views


def staff_version(views: list[QueueView]) -> str:
    """Changes whenever the staff page would show something else."""
    return ";".join(
        f"{view.queue.key}:" + ",".join(f"{row.entry.id}{row.entry.status[0]}{row.entry.team_id}" for row in rows)
        for view in views
        for rows in (view.waiting + view.called,)
    )
