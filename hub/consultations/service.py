"""Defining consultation series, writing their sessions and slots, and booking and cancelling places.

A slot's `booked` count is raised by one conditional UPDATE (`booked < capacity`) in the
booking's own transaction, so however many citizens book the last place at once, on
PostgreSQL (a row lock) or SQLite (one writer), exactly `capacity` succeed; the rest are
offered the next free slots. One live booking per citizen and session is a partial unique index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from hub.consultations.concerns import open_concern
from hub.consultations.models import (
    LOCATIONS,
    Booking,
    BookingReminder,
    ConsultationSeries,
    ConsultationSession,
    ConsultationSlot,
)
from hub.consultations.recurrence import check_definition, clock_time, occurrences, zone
from hub.contacts.service import resolve_contact
from hub.db import utcnow
from hub.errors import Conflict, InvalidInput, NotFound
from hub.i18n import N_
from hub.inbox.service import next_reference
from hub.subscribers.models import Topic
from hub.subscribers.verification import normalise_phone
from hub.tenancy.models import Municipality, StaffUser, Team

# Shortest slot, and the most citizens one slot may take.
MIN_SLOT_MINUTES = 5
MAX_CAPACITY = 500
# How many free slots a citizen is offered when theirs was taken.
ALTERNATIVES = 3


@dataclass(frozen=True)
class SeriesDraft:
    title: str
    rrule: str
    first_day: date
    start_time: str
    end_time: str
    description: str = ""
    host_user_id: int | None = None
    host_team_id: int | None = None
    location: str = "video"
    address: str | None = None
    slot_minutes: int = 15
    capacity: int = 1
    opens_days_before: int = 30
    closes_hours_before: int = 2
    questions_allowed: bool = True
    exdates: list[str] = field(default_factory=list)
    rdates: list[str] = field(default_factory=list)
    topic_id: int | None = None


def _check_draft(session: Session, municipality: Municipality, draft: SeriesDraft) -> None:
    if not draft.title.strip():
        raise InvalidInput(N_("Bitte geben Sie der Sprechstunde einen Titel."))
    if draft.location not in LOCATIONS:
        raise InvalidInput(
            N_("Unbekannter Ort {location!r}; erlaubt: Video, Telefon, vor Ort."), location=draft.location
        )
    if draft.location == "in_person" and not (draft.address or "").strip():
        raise InvalidInput(N_("Für eine Sprechstunde vor Ort fehlt die Adresse."))
    if (draft.host_user_id is None) == (draft.host_team_id is None):
        raise InvalidInput(N_("Bitte geben Sie genau eine Person oder ein Team an, das die Sprechstunde hält."))
    host: StaffUser | Team | None = (
        session.get(StaffUser, draft.host_user_id)
        if draft.host_user_id is not None
        else session.get(Team, draft.host_team_id)
    )
    if host is None or host.municipality_id != municipality.id:
        raise InvalidInput(N_("Die angegebene Person oder das Team gibt es in dieser Gemeinde nicht."))
    topic = session.get(Topic, draft.topic_id) if draft.topic_id is not None else None
    if draft.topic_id is not None and (topic is None or topic.municipality_id != municipality.id):
        raise InvalidInput(N_("Das angegebene Thema gibt es in dieser Gemeinde nicht."))
    if not draft.slot_minutes >= MIN_SLOT_MINUTES:
        raise InvalidInput(
            N_("Ein Termin dauert mindestens {min_slot_minutes} Minuten."), min_slot_minutes=MIN_SLOT_MINUTES
        )
    if not 1 <= draft.capacity <= MAX_CAPACITY:
        raise InvalidInput(
            N_("Die Plätze je Termin müssen zwischen 1 und {max_capacity} liegen."), max_capacity=MAX_CAPACITY
        )
    if draft.opens_days_before < 1 or draft.closes_hours_before < 0:
        raise InvalidInput(
            N_("Die Buchung muss mindestens einen Tag vorher öffnen und darf nicht nach Beginn schließen.")
        )
    check_definition(
        rule=draft.rrule, first_day=draft.first_day, start_time=draft.start_time, end_time=draft.end_time,
        exdates=draft.exdates, rdates=draft.rdates, timezone=municipality.timezone,
    )  # fmt: skip
    starts, ends = clock_time(draft.start_time, field="Beginn"), clock_time(draft.end_time, field="Ende")
    minutes = (ends.hour * 60 + ends.minute) - (starts.hour * 60 + starts.minute)
    if draft.slot_minutes > minutes:
        raise InvalidInput(
            N_("Ein Termin ({slot_minutes} Minuten) passt nicht in die Sprechstunde ({minutes})."),
            slot_minutes=draft.slot_minutes,
            minutes=minutes,
        )


def define_series(session: Session, *, municipality: Municipality, draft: SeriesDraft) -> ConsultationSeries:
    """A new series, checked as a whole first: nothing is stored from a definition that is refused."""
    assert municipality.id is not None
    _check_draft(session, municipality, draft)
    series = ConsultationSeries(
        municipality_id=municipality.id,
        title=draft.title.strip(),
        description=draft.description.strip(),
        host_user_id=draft.host_user_id,
        host_team_id=draft.host_team_id,
        location=draft.location,
        address=(draft.address or "").strip() or None,
        first_day=draft.first_day,
        start_time=draft.start_time.strip(),
        end_time=draft.end_time.strip(),
        rrule=draft.rrule.strip().removeprefix("RRULE:"),
        exdates=list(draft.exdates),
        rdates=list(draft.rdates),
        slot_minutes=draft.slot_minutes,
        capacity=draft.capacity,
        opens_days_before=draft.opens_days_before,
        closes_hours_before=draft.closes_hours_before,
        questions_allowed=draft.questions_allowed,
        topic_id=draft.topic_id,
    )
    session.add(series)
    session.flush()
    return series


def get_series(session: Session, *, municipality_id: int, series_id: int) -> ConsultationSeries:
    series = session.get(ConsultationSeries, series_id)
    if series is None or series.municipality_id != municipality_id:
        raise NotFound(N_("Diese Sprechstunde gibt es nicht."))
    return series


def ensure_sessions(
    session: Session, *, series: ConsultationSeries, municipality: Municipality, now: datetime | None = None
) -> list[ConsultationSession]:
    """Writes the sessions (and their slots) that the booking window has reached; returns every session in it.

    Commits what it wrote. Safe to run at once in several processes: when another one wrote a
    session first, this transaction is rolled back and the sessions are read again. A session
    staff moved stands for the occurrence it was moved from (and holds the time it was moved to),
    so the recurrence does not write that occurrence again.
    """
    assert series.id is not None
    now = now or utcnow()
    horizon = now + timedelta(days=series.opens_days_before)
    found = occurrences(
        rule=series.rrule, first_day=series.first_day, start_time=series.start_time, end_time=series.end_time,
        exdates=series.exdates, rdates=series.rdates, timezone=municipality.timezone,
        between=(now.date() - timedelta(days=1), horizon.date() + timedelta(days=1)),
    )  # fmt: skip
    wanted = [occurrence for occurrence in found if now <= occurrence.starts_at <= horizon]
    times = [occurrence.starts_at for occurrence in wanted]
    existing: dict[datetime, ConsultationSession] = {}
    for row in session.exec(
        select(ConsultationSession).where(
            ConsultationSession.series_id == series.id,
            col(ConsultationSession.starts_at).in_(times) | col(ConsultationSession.moved_from).in_(times),
        )
    ):
        existing[row.starts_at] = row
        if row.moved_from is not None:
            existing[row.moved_from] = row
    for occurrence in wanted:
        if occurrence.starts_at in existing:
            continue
        written = ConsultationSession(
            municipality_id=series.municipality_id, series_id=series.id,
            starts_at=occurrence.starts_at, ends_at=occurrence.ends_at,
        )  # fmt: skip
        session.add(written)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            return ensure_sessions(session, series=series, municipality=municipality, now=now)
        assert written.id is not None
        step = timedelta(minutes=series.slot_minutes)
        start = occurrence.starts_at
        while start + step <= occurrence.ends_at:
            session.add(
                ConsultationSlot(session_id=written.id, starts_at=start, ends_at=start + step, capacity=series.capacity)
            )
            start += step
        existing[occurrence.starts_at] = written
    session.commit()
    # A session moved onto another occurrence's time stands for both: listed once.
    return list({existing[occurrence.starts_at].id: existing[occurrence.starts_at] for occurrence in wanted}.values())


@dataclass(frozen=True)
class FreeSlot:
    slot_id: int
    session_id: int
    starts_at: datetime
    ends_at: datetime
    free: int


def free_slots(
    session: Session, *, series: ConsultationSeries, now: datetime | None = None, limit: int = 50
) -> list[FreeSlot]:
    """Slots of scheduled sessions that are open for booking now and have a place left, soonest first."""
    now = now or utcnow()
    rows = session.exec(
        select(ConsultationSlot, ConsultationSession)
        .join(ConsultationSession, col(ConsultationSession.id) == ConsultationSlot.session_id)
        .where(
            ConsultationSession.series_id == series.id,
            ConsultationSession.status == "scheduled",
            col(ConsultationSlot.booked) < col(ConsultationSlot.capacity),
            col(ConsultationSlot.starts_at) >= now + timedelta(hours=series.closes_hours_before),
            col(ConsultationSlot.starts_at) <= now + timedelta(days=series.opens_days_before),
        )
        .order_by(col(ConsultationSlot.starts_at), col(ConsultationSlot.id))
        .limit(limit)
    ).all()
    return [
        FreeSlot(
            slot_id=slot.id,
            session_id=held.id,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            free=slot.capacity - slot.booked,
        )
        for slot, held in rows
        if slot.id is not None and held.id is not None
    ]


_TAKEN = N_("Dieser Termin ist inzwischen vergeben. Freie Termine: {offered}.")
_TAKEN_ALL = N_("Dieser Termin ist inzwischen vergeben, und es sind keine Termine mehr frei.")


class SlotTaken(Conflict):
    """The slot filled up meanwhile; `alternatives` are the next free ones of the series, named in the message."""

    def __init__(self, alternatives: list[FreeSlot], timezone: str) -> None:
        tz = zone(timezone)
        offered = ", ".join(free.starts_at.astimezone(tz).strftime("%d.%m.%Y %H:%M") for free in alternatives)
        if alternatives:
            super().__init__(_TAKEN, offered=offered)
        else:
            super().__init__(_TAKEN_ALL)
        self.alternatives = alternatives


def list_series(session: Session, *, municipality_id: int) -> list[ConsultationSeries]:
    return list(
        session.exec(
            select(ConsultationSeries)
            .where(ConsultationSeries.municipality_id == municipality_id)
            .order_by(col(ConsultationSeries.title), col(ConsultationSeries.id))
        )
    )


@dataclass(frozen=True)
class SlotView:
    slot: ConsultationSlot
    bookings: list[Booking]


@dataclass(frozen=True)
class SessionView:
    session: ConsultationSession
    slots: list[SlotView]

    @property
    def free(self) -> int:
        return sum(view.slot.capacity - view.slot.booked for view in self.slots)

    @property
    def booked(self) -> int:
        return sum(view.slot.booked for view in self.slots)


def upcoming(
    session: Session, *, series: ConsultationSeries, municipality: Municipality, now: datetime | None = None
) -> list[SessionView]:
    """The series' sessions in the booking window, each with its slots and their live bookings."""
    held = ensure_sessions(session, series=series, municipality=municipality, now=now)
    return session_views(session, held=held)


def session_views(
    session: Session, *, held: list[ConsultationSession], states: tuple[str, ...] = ("booked",)
) -> list[SessionView]:
    """Each session with its slots and their bookings in `states` (the live ones unless told otherwise)."""
    ids = [row.id for row in held]
    slots = session.exec(
        select(ConsultationSlot)
        .where(col(ConsultationSlot.session_id).in_(ids))
        .order_by(col(ConsultationSlot.starts_at))
    ).all()
    bookings = session.exec(
        select(Booking)
        .where(col(Booking.session_id).in_(ids), col(Booking.status).in_(states))
        .order_by(col(Booking.id))
    ).all()
    by_slot: dict[int, list[Booking]] = {}
    for booking in bookings:
        by_slot.setdefault(booking.slot_id, []).append(booking)
    return [
        SessionView(
            session=row,
            slots=[SlotView(slot, by_slot.get(slot.id or 0, [])) for slot in slots if slot.session_id == row.id],
        )
        for row in held
    ]


def check_booking(
    session: Session, *, municipality: Municipality, slot_id: int, name: str, concern: str | None
) -> tuple[ConsultationSlot, ConsultationSession, ConsultationSeries]:
    """The slot, its session and series, if the slot is the town's and the request fits the series.

    What is checked here is what the citizen typed; whether the slot can be had now, book() checks.
    """
    slot = session.get(ConsultationSlot, slot_id)
    held = session.get(ConsultationSession, slot.session_id) if slot else None
    series = session.get(ConsultationSeries, held.series_id) if held else None
    if slot is None or held is None or series is None or series.municipality_id != municipality.id:
        raise NotFound(N_("Diesen Termin gibt es nicht."))
    if not name.strip():
        raise InvalidInput(N_("Bitte geben Sie Ihren Namen an."))
    if (concern or "").strip() and not series.questions_allowed:
        raise InvalidInput(N_("Zu dieser Sprechstunde können vorab keine Fragen gestellt werden."))
    return slot, held, series


def _take_place(
    session: Session,
    *,
    municipality: Municipality,
    slot: ConsultationSlot,
    held: ConsultationSession,
    series: ConsultationSeries,
    now: datetime,
) -> None:
    """Counts one more citizen in the slot if it is open for booking now and has room, else refuses.

    The count is one conditional UPDATE (`booked < capacity`), so concurrent bookings of the last
    place cannot both pass. A full slot rolls the transaction back and names the next free ones.
    """
    if held.status != "scheduled" or not series.active:
        raise Conflict(N_("Diese Sprechstunde findet nicht statt."))
    if slot.starts_at <= now:
        raise InvalidInput(N_("Dieser Termin liegt in der Vergangenheit."))
    if slot.starts_at < now + timedelta(hours=series.closes_hours_before):
        raise Conflict(
            N_("Für diesen Termin ist die Buchung geschlossen ({hours} Stunden vorher)."),
            hours=series.closes_hours_before,
        )
    if slot.starts_at > now + timedelta(days=series.opens_days_before):
        raise Conflict(N_("Dieser Termin kann erst {days} Tage vorher gebucht werden."), days=series.opens_days_before)
    taken = session.execute(
        update(ConsultationSlot)
        .where(col(ConsultationSlot.id) == slot.id, col(ConsultationSlot.booked) < col(ConsultationSlot.capacity))
        .values(booked=ConsultationSlot.booked + 1)
    )
    if not taken.rowcount:  # type: ignore[attr-defined]
        session.rollback()
        raise SlotTaken(free_slots(session, series=series, now=now, limit=ALTERNATIVES), municipality.timezone)


def _give_back_place(session: Session, *, slot_id: int) -> None:
    session.execute(
        update(ConsultationSlot).where(col(ConsultationSlot.id) == slot_id).values(booked=ConsultationSlot.booked - 1)
    )


def book(
    session: Session,
    *,
    municipality: Municipality,
    slot_id: int,
    contact_id: int,
    name: str,
    concern: str | None = None,
    reached_on: str | None = None,
    now: datetime | None = None,
) -> Booking:
    """Takes a place in the slot for the citizen, or refuses with the reason; a refusal leaves nothing stored.

    A concern opens a case in the inbox for the series' host, on the channel of `reached_on`
    (the kind of address the citizen gave, e.g. "phone"), else the first one that reaches them.
    On a refusal the session's transaction is rolled back, since the place may already have
    been counted; the caller commits a booking that was made.
    """
    assert municipality.id is not None
    now = now or utcnow()
    slot, held, series = check_booking(session, municipality=municipality, slot_id=slot_id, name=name, concern=concern)
    _take_place(session, municipality=municipality, slot=slot, held=held, series=series, now=now)
    assert held.id is not None
    booking = Booking(
        municipality_id=municipality.id, session_id=held.id, slot_id=slot_id, contact_id=contact_id,
        reference=next_reference(session, municipality=municipality), name=name.strip()[:200],
        concern=(concern or "").strip() or None, created_at=now,
    )  # fmt: skip
    session.add(booking)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(N_("Sie haben für diese Sprechstunde schon einen Termin.")) from None
    session.expire(slot)
    if booking.concern:
        open_concern(session, booking=booking, series=series, reached_on=reached_on, now=now)
    return booking


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def book_for(
    session: Session,
    *,
    municipality: Municipality,
    slot_id: int,
    name: str,
    phone: str | None,
    email: str | None,
    concern: str | None = None,
    now: datetime | None = None,
) -> Booking:
    """Books for a citizen who called or came in, found (or added) by their phone number or email address."""
    assert municipality.id is not None
    if phone and phone.strip():
        kind, address = "phone", normalise_phone(municipality, phone, "de")
    elif email and _EMAIL.fullmatch(email.strip()):
        kind, address = "email", email.strip().lower()
    else:
        raise InvalidInput(N_("Bitte geben Sie eine Telefonnummer oder eine gültige E-Mail-Adresse an."))
    contact = resolve_contact(session, municipality_id=municipality.id, kind=kind, address=address, display_name=name)
    assert contact.id is not None
    return book(
        session, municipality=municipality, slot_id=slot_id, contact_id=contact.id, name=name, concern=concern,
        reached_on=kind, now=now,
    )  # fmt: skip


def move(
    session: Session, *, municipality: Municipality, booking_id: int, slot_id: int, now: datetime | None = None
) -> Booking:
    """Moves a live booking to another slot of its series, keeping its reference; refused like a new booking.

    The new place is taken with the same conditional UPDATE as a booking and the old one given
    back in the same transaction; reminders already sent for the old time are forgotten, so the
    new time is reminded of. On a refusal the transaction is rolled back; the caller commits.
    """
    assert municipality.id is not None
    now = now or utcnow()
    booking = session.get(Booking, booking_id)
    if booking is None or booking.municipality_id != municipality.id:
        raise NotFound(N_("Diese Buchung gibt es nicht."))
    if booking.status != "booked":
        raise Conflict(N_("Diese Buchung ist abgesagt und kann nicht mehr verschoben werden."))
    held = session.get(ConsultationSession, booking.session_id)
    slot = session.get(ConsultationSlot, slot_id)
    target = session.get(ConsultationSession, slot.session_id) if slot else None
    if slot is None or target is None or held is None or target.series_id != held.series_id:
        raise NotFound(N_("Diesen Termin gibt es nicht."))
    if slot_id == booking.slot_id:
        return booking
    series = session.get(ConsultationSeries, held.series_id)
    assert series is not None
    _take_place(session, municipality=municipality, slot=slot, held=target, series=series, now=now)
    _give_back_place(session, slot_id=booking.slot_id)
    session.execute(delete(BookingReminder).where(col(BookingReminder.booking_id) == booking.id))
    assert target.id is not None
    booking.slot_id, booking.session_id = slot_id, target.id
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(N_("Sie haben für diese Sprechstunde schon einen Termin.")) from None
    session.expire(slot)
    return booking


def cancel(session: Session, *, municipality_id: int, booking_id: int, now: datetime | None = None) -> Booking:
    """Cancels a live booking and frees its place; cancelling one already cancelled changes nothing."""
    booking = session.get(Booking, booking_id)
    if booking is None or booking.municipality_id != municipality_id:
        raise NotFound(N_("Diese Buchung gibt es nicht."))
    cancelled = session.execute(
        update(Booking)
        .where(col(Booking.id) == booking_id, col(Booking.status) == "booked")
        .values(status="cancelled", cancelled_at=now or utcnow())
    )
    if cancelled.rowcount:  # type: ignore[attr-defined]
        _give_back_place(session, slot_id=booking.slot_id)
    session.refresh(booking)
    return booking
