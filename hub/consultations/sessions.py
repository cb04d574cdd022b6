"""What staff do with held sessions: the overview, no-shows and notes, cancelling or moving a session, the CSV.

Cancelling or moving a session changes its rows and queues a message to every booked citizen
in one transaction, which the caller commits: either all of them are told, or nothing changed.
The messages leave through the delivery engine like reminders, on the channel that reaches the
citizen (`reminder_account`); the caller enqueues them after the commit.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from channels.registry import adapter_class
from hub.consultations.models import (
    BOOKING_LABELS,
    Booking,
    BookingReminder,
    ConsultationSeries,
    ConsultationSession,
    ConsultationSlot,
)
from hub.consultations.recurrence import clock_time, local_to_utc, zone
from hub.consultations.reminders import reminder_account
from hub.consultations.service import (
    ALTERNATIVES,
    SessionView,
    cancel,
    ensure_sessions,
    free_slots,
    get_series,
    session_views,
)
from hub.contacts.models import Contact, ContactIdentity
from hub.db import utcnow
from hub.errors import Conflict, InvalidInput, NotFound
from hub.i18n import N_
from hub.inbox.service import queue_outbound
from hub.templating import greeting, render_message
from hub.tenancy.models import Municipality

# How far back the staff overview reaches, so that no-shows can be marked after a session.
RECENT = timedelta(days=14)
# What staff may mark a booking as once its slot has begun.
MARKS = ("no_show", "attended")
NOTE_LIMIT = 2000
# Everything but cancelled: a no-show still took the place.
HELD_STATES = ("booked", "no_show", "attended")


def overview(
    session: Session, *, series: ConsultationSeries, municipality: Municipality, now: datetime | None = None
) -> list[SessionView]:
    """The series' sessions of the last two weeks and the booking window, cancelled and moved ones included."""
    now = now or utcnow()
    ensure_sessions(session, series=series, municipality=municipality, now=now)
    held = session.exec(
        select(ConsultationSession)
        .where(ConsultationSession.series_id == series.id, col(ConsultationSession.starts_at) >= now - RECENT)
        .order_by(col(ConsultationSession.starts_at))
    ).all()
    return session_views(session, held=list(held), states=HELD_STATES)


# How many of a citizen's bookings stand beside a conversation, the latest first.
BOOKINGS_BESIDE_CONVERSATION = 5


@dataclass(frozen=True)
class ContactBooking:
    """One of a citizen's bookings as staff see it beside their conversation."""

    booking: Booking
    series: ConsultationSeries
    starts_at: datetime


def contact_panel(session: Session, municipality_id: int, contact_id: int) -> dict[str, Any]:
    """The citizen's latest bookings beside a conversation (hub.contacts.registry.CONVERSATION_PANEL).

    A conversation opened by a booking's concern shows the booking it belongs to among them.
    """
    rows = session.exec(
        select(Booking, ConsultationSeries, ConsultationSlot.starts_at)
        .join(ConsultationSlot, col(ConsultationSlot.id) == Booking.slot_id)
        .join(ConsultationSession, col(ConsultationSession.id) == Booking.session_id)
        .join(ConsultationSeries, col(ConsultationSeries.id) == ConsultationSession.series_id)
        .where(Booking.municipality_id == municipality_id, Booking.contact_id == contact_id)
        .order_by(col(ConsultationSlot.starts_at).desc(), col(Booking.id).desc())
        .limit(BOOKINGS_BESIDE_CONVERSATION)
    ).all()
    return {
        "bookings": [ContactBooking(booking, series, starts_at) for booking, series, starts_at in rows],
        "booking_labels": BOOKING_LABELS,
    }


def contact_context(session: Session, municipality_id: int, contact_id: int) -> dict[str, Any]:
    """The same bookings as JSON-ready values, for the API's contact context (hub.contacts.registry.CONTACT_CONTEXT)."""
    bookings: list[ContactBooking] = contact_panel(session, municipality_id, contact_id)["bookings"]
    return {
        "bookings": [
            {
                "id": item.booking.id,
                "reference": item.booking.reference,
                "status": item.booking.status,
                "series_id": item.series.id,
                "series_title": item.series.title,
                "starts_at": item.starts_at.isoformat(),
                "conversation_id": item.booking.conversation_id,
            }
            for item in bookings
        ]
    }


def get_booking(session: Session, *, municipality_id: int, booking_id: int) -> Booking:
    booking = session.get(Booking, booking_id)
    if booking is None or booking.municipality_id != municipality_id:
        raise NotFound(N_("Diese Buchung gibt es nicht."))
    return booking


def get_session(session: Session, *, municipality_id: int, session_id: int) -> ConsultationSession:
    held = session.get(ConsultationSession, session_id)
    if held is None or held.municipality_id != municipality_id:
        raise NotFound(N_("Diesen Termin gibt es nicht."))
    return held


def mark_booking(
    session: Session, *, municipality_id: int, booking_id: int, status: str, now: datetime | None = None
) -> Booking:
    """Records whether the citizen came; only once their slot has begun, and never for a cancelled booking."""
    booking = get_booking(session, municipality_id=municipality_id, booking_id=booking_id)
    if status not in MARKS:
        raise InvalidInput(N_("Unbekannter Vermerk {status!r}; erlaubt: erschienen, nicht erschienen."), status=status)
    if booking.status == "cancelled":
        raise Conflict(N_("Diese Buchung ist abgesagt."))
    slot = session.get(ConsultationSlot, booking.slot_id)
    assert slot is not None
    if slot.starts_at > (now or utcnow()):
        raise InvalidInput(N_("Ob jemand erschienen ist, lässt sich erst ab Beginn des Termins vermerken."))
    booking.status = status
    session.add(booking)
    session.flush()
    return booking


def note_booking(session: Session, *, municipality_id: int, booking_id: int, note: str) -> Booking:
    """Sets (or, with an empty text, removes) the staff's note on a booking; the citizen never sees it."""
    booking = get_booking(session, municipality_id=municipality_id, booking_id=booking_id)
    if len(note.strip()) > NOTE_LIMIT:
        raise InvalidInput(N_("Die Notiz ist zu lang (höchstens {limit} Zeichen)."), limit=NOTE_LIMIT)
    booking.staff_note = note.strip() or None
    session.add(booking)
    session.flush()
    return booking


@dataclass(frozen=True)
class Told:
    """What a change to bookings queued: the messages to enqueue after commit, and whom no channel reaches."""

    message_ids: list[int] = field(default_factory=list)
    unreached: list[Booking] = field(default_factory=list)


def _when(moment: datetime, municipality: Municipality) -> str:
    return moment.astimezone(zone(municipality.timezone)).strftime("%d.%m.%Y %H:%M")


def _tell(session: Session, *, bookings: list[Booking], template: str, municipality: Municipality,
          shift: timedelta | None = None, **context: Any) -> Told:  # fmt: skip
    """Queues `template` (and its subject) to each booked citizen, in their language, on the channel reaching them.

    Each is told the time of their own slot (`when`) and, for a move by `shift`, its time before (`before`).
    """
    told = Told()
    for booking in bookings:
        slot = session.get(ConsultationSlot, booking.slot_id)
        assert slot is not None
        times = {"when": _when(slot.starts_at, municipality)}
        if shift is not None:
            times["before"] = _when(slot.starts_at - shift, municipality)
        account = reminder_account(session, booking)
        if account is None or account.id is None:
            told.unreached.append(booking)
            continue
        contact = session.get(Contact, booking.contact_id)
        language = contact.language if contact else "de"
        values = {
            **greeting(language, booking.name), **context, **times, "reference": booking.reference,
            "short": adapter_class(account.kind).max_segments is not None,
        }  # fmt: skip
        message = queue_outbound(
            session, starting=(account.id, booking.contact_id), author=None, automated=True,
            text=render_message(f"{template}.txt.j2", language, **values),
            subject=render_message(f"{template}_subject.txt.j2", language, **values),
        )  # fmt: skip
        assert message.id is not None
        told.message_ids.append(message.id)
    return told


def _live_bookings(session: Session, session_id: int) -> list[Booking]:
    return list(
        session.exec(
            select(Booking)
            .where(Booking.session_id == session_id, Booking.status == "booked")
            .order_by(col(Booking.id))
        )
    )


def cancel_session(
    session: Session, *, municipality: Municipality, session_id: int, now: datetime | None = None
) -> Told:
    """Cancels a session that has not begun and every booking in it; each citizen is offered the next free slots.

    The session is claimed with one conditional UPDATE, so of two clerks cancelling at once one
    does it and the other is told it is done; nobody is told twice.
    """
    assert municipality.id is not None
    now = now or utcnow()
    held = get_session(session, municipality_id=municipality.id, session_id=session_id)
    if held.starts_at <= now:
        raise InvalidInput(N_("Ein Termin, der schon begonnen hat, lässt sich nicht mehr absagen."))
    claimed = session.execute(
        update(ConsultationSession)
        .where(col(ConsultationSession.id) == session_id, col(ConsultationSession.status) == "scheduled")
        .values(status="cancelled")
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        session.rollback()
        raise Conflict(N_("Dieser Termin ist schon abgesagt."))
    bookings = _live_bookings(session, session_id)
    session.execute(
        update(Booking)
        .where(col(Booking.session_id) == session_id, col(Booking.status) == "booked")
        .values(status="cancelled", cancelled_at=now)
    )
    session.execute(update(ConsultationSlot).where(col(ConsultationSlot.session_id) == session_id).values(booked=0))
    session.refresh(held)
    series = get_series(session, municipality_id=municipality.id, series_id=held.series_id)
    offered = [
        _when(free.starts_at, municipality) for free in free_slots(session, series=series, now=now, limit=ALTERNATIVES)
    ]
    return _tell(
        session, bookings=bookings, template="consultation_cancelled", municipality=municipality,
        title=series.title, offered=offered,
    )  # fmt: skip


def move_session(
    session: Session,
    *,
    municipality: Municipality,
    session_id: int,
    day: date,
    start_time: str,
    now: datetime | None = None,
) -> Told:
    """Moves a session (its length kept) to another day and time; its slots and bookings go along, each citizen is told.

    The slots are shifted one by one, the last first when moving later, so that no two of them
    share a start on the way (the unique key is checked row by row on both databases).
    Reminders already sent are forgotten: the citizen is reminded again of the new time.
    """
    assert municipality.id is not None
    now = now or utcnow()
    held = get_session(session, municipality_id=municipality.id, session_id=session_id)
    if held.status != "scheduled":
        raise Conflict(N_("Ein abgesagter Termin lässt sich nicht verschieben."))
    starts = local_to_utc(day, clock_time(start_time, field=N_("Beginn")), zone(municipality.timezone))
    if starts is None:
        raise InvalidInput(
            N_("Am {day} gibt es {label} Uhr nicht: die Uhren werden umgestellt."),
            day=day.strftime("%d.%m.%Y"), label=start_time,
        )  # fmt: skip
    if starts <= now:
        raise InvalidInput(N_("Der neue Termin liegt in der Vergangenheit."))
    if starts == held.starts_at:
        raise InvalidInput(N_("Der Termin liegt schon zu dieser Zeit."))
    assert held.id is not None
    shift = starts - held.starts_at
    origin = held.moved_from or held.starts_at
    try:
        session.execute(
            update(ConsultationSession)
            .where(col(ConsultationSession.id) == held.id)
            .values(
                starts_at=held.starts_at + shift, ends_at=held.ends_at + shift,
                moved_from=None if origin == starts else origin,
            )
        )  # fmt: skip
    except IntegrityError:
        session.rollback()
        raise Conflict(N_("Zu dieser Zeit gibt es schon einen Termin dieser Sprechstunde.")) from None
    slots = session.exec(
        select(ConsultationSlot).where(ConsultationSlot.session_id == held.id).order_by(col(ConsultationSlot.starts_at))
    ).all()
    for slot in reversed(slots) if shift > timedelta(0) else slots:
        session.execute(
            update(ConsultationSlot)
            .where(col(ConsultationSlot.id) == slot.id)
            .values(starts_at=slot.starts_at + shift, ends_at=slot.ends_at + shift)
        )
    bookings = _live_bookings(session, held.id)
    session.execute(delete(BookingReminder).where(col(BookingReminder.booking_id).in_([b.id for b in bookings])))
    session.refresh(held)
    for slot in slots:
        session.refresh(slot)
    series = get_series(session, municipality_id=municipality.id, series_id=held.series_id)
    return _tell(
        session, bookings=bookings, template="consultation_moved", municipality=municipality, shift=shift,
        title=series.title,
    )  # fmt: skip


def cancel_for_citizen(
    session: Session, *, municipality: Municipality, booking_id: int, now: datetime | None = None
) -> Told:
    """Staff cancel one booking: its place is freed, and the citizen is told and offered the next free slots."""
    assert municipality.id is not None
    booking = get_booking(session, municipality_id=municipality.id, booking_id=booking_id)
    if booking.status != "booked":
        raise Conflict(N_("Diese Buchung ist nicht mehr aktiv."))
    cancel(session, municipality_id=municipality.id, booking_id=booking_id, now=now)
    held = get_session(session, municipality_id=municipality.id, session_id=booking.session_id)
    slot = session.get(ConsultationSlot, booking.slot_id)
    series = get_series(session, municipality_id=municipality.id, series_id=held.series_id)
    assert slot is not None
    offered = [
        _when(free.starts_at, municipality)
        for free in free_slots(session, series=series, now=now, limit=ALTERNATIVES + 1)
        if free.slot_id != slot.id
    ][:ALTERNATIVES]
    return _tell(
        session, bookings=[booking], template="consultation_cancelled", municipality=municipality,
        title=series.title, offered=offered,
    )  # fmt: skip


# The CSV's column names: stable keys for spreadsheets and scripts, like the broadcast report's.
CSV_HEADER = ("referenz", "beginn", "ende", "name", "status", "kontakt", "anliegen", "notiz", "gebucht_am")


def bookings_csv(session: Session, *, series: ConsultationSeries, municipality: Municipality) -> str:
    """Every booking of the series, any state, soonest slot first, times in the town's zone."""
    rows = session.exec(
        select(Booking, ConsultationSlot)
        .join(ConsultationSlot, col(ConsultationSlot.id) == Booking.slot_id)
        .join(ConsultationSession, col(ConsultationSession.id) == Booking.session_id)
        .where(ConsultationSession.series_id == series.id)
        .order_by(col(ConsultationSlot.starts_at), col(Booking.id))
    ).all()
    addresses: dict[int, str] = {}
    for identity in session.exec(
        select(ContactIdentity)
        .where(col(ContactIdentity.contact_id).in_({booking.contact_id for booking, _ in rows}))
        .order_by(col(ContactIdentity.id))
    ):
        addresses.setdefault(identity.contact_id, identity.address)
    tz = zone(municipality.timezone)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(CSV_HEADER)
    for booking, slot in rows:
        writer.writerow(
            [
                booking.reference, f"{slot.starts_at.astimezone(tz):%Y-%m-%d %H:%M}",
                f"{slot.ends_at.astimezone(tz):%Y-%m-%d %H:%M}", booking.name, booking.status,
                addresses.get(booking.contact_id, ""), booking.concern or "", booking.staff_note or "",
                f"{booking.created_at.astimezone(tz):%Y-%m-%d %H:%M}",
            ]
        )  # fmt: skip
    return out.getvalue()
