"""Reminders before a booked slot (24 and 1 hours by default), each sent once, never for a cancelled booking.

A reminder is a row in `booking_reminder`, unique per booking and lead time, written in the
same transaction as the message it queues: two sweeps at once (two beat processes by mistake)
queue it once. Of a booking's lead times that have come, only the shortest is sent: a hub that
was down for a day does not send yesterday's reminder next to today's. The message leaves
through the delivery engine like every reply (hub.inbox.outbound).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from channels.registry import adapter_class
from hub.consultations.models import Booking, BookingReminder, ConsultationSeries, ConsultationSession, ConsultationSlot
from hub.consultations.recurrence import zone
from hub.contacts.models import Contact
from hub.contacts.service import identities_of
from hub.db import utcnow
from hub.inbox.service import queue_outbound
from hub.templating import greeting, render_message
from hub.tenancy.models import ChannelAccount, Municipality
from hub.tenancy.service import channel_reaching

# Lead times of more than this are not looked for: no series reminds a week ahead.
LONGEST_LEAD = timedelta(days=7)


@dataclass(frozen=True)
class Due:
    booking: Booking
    slot: ConsultationSlot
    series: ConsultationSeries
    hours_before: int


def due_reminders(session: Session, *, now: datetime) -> list[Due]:
    """Live bookings of scheduled sessions whose shortest lead time that has come is not yet reminded."""
    rows = session.exec(
        select(Booking, ConsultationSlot, ConsultationSeries)
        .join(ConsultationSlot, col(ConsultationSlot.id) == Booking.slot_id)
        .join(ConsultationSession, col(ConsultationSession.id) == Booking.session_id)
        .join(ConsultationSeries, col(ConsultationSeries.id) == ConsultationSession.series_id)
        .where(
            Booking.status == "booked",
            ConsultationSession.status == "scheduled",
            col(ConsultationSlot.starts_at) > now,
            col(ConsultationSlot.starts_at) <= now + LONGEST_LEAD,
        )
        .order_by(col(ConsultationSlot.starts_at), col(Booking.id))
    ).all()
    sent = {
        (reminder.booking_id, reminder.hours_before)
        for reminder in session.exec(
            select(BookingReminder).where(col(BookingReminder.booking_id).in_([booking.id for booking, _, _ in rows]))
        )
    }
    due = []
    for booking, slot, series in rows:
        come = [hours for hours in series.reminder_hours if slot.starts_at - timedelta(hours=hours) <= now]
        if come and (booking.id, min(come)) not in sent:
            due.append(Due(booking, slot, series, min(come)))
    return due


def reminder_account(session: Session, booking: Booking) -> ChannelAccount | None:
    """The town's account that reaches the booking's citizen."""
    return account_reaching(session, municipality_id=booking.municipality_id, contact_id=booking.contact_id)


def account_reaching(session: Session, *, municipality_id: int, contact_id: int) -> ChannelAccount | None:
    """The town's account that reaches the citizen, by the first of their addresses that one reaches."""
    for identity in identities_of(session, contact_id=contact_id):
        account = channel_reaching(session, municipality_id=municipality_id, identity=identity.kind)
        if account is not None:
            return account
    return None


def _texts(session: Session, due: Due, municipality: Municipality, account: ChannelAccount) -> tuple[str, str]:
    """The reminder's text and subject, in the citizen's language; on SMS the short text."""
    contact = session.get(Contact, due.booking.contact_id)
    language = contact.language if contact else "de"
    context: dict[str, Any] = {
        **greeting(language, due.booking.name),
        "title": due.series.title,
        "when": due.slot.starts_at.astimezone(zone(municipality.timezone)).strftime("%d.%m.%Y %H:%M"),
        "reference": due.booking.reference,
        "location": due.series.location,
        "address": due.series.address,
        "short": adapter_class(account.kind).max_segments is not None,
    }
    return (
        render_message("consultation_reminder.txt.j2", language, **context),
        render_message("consultation_reminder_subject.txt.j2", language, **context),
    )


def queue_due_reminders(session: Session, *, now: datetime | None = None) -> list[int]:
    """Queues each due reminder in a transaction of its own; returns the messages to enqueue.

    A citizen the town cannot reach on any channel is skipped, and stays so until one exists.
    """
    now = now or utcnow()
    queued = []
    for due in due_reminders(session, now=now):
        municipality = session.get(Municipality, due.booking.municipality_id)
        account = reminder_account(session, due.booking)
        if municipality is None or account is None or account.id is None:
            continue
        assert due.booking.id is not None
        session.add(BookingReminder(booking_id=due.booking.id, hours_before=due.hours_before, created_at=now))
        try:
            session.flush()
        except IntegrityError:
            session.rollback()  # another sweep queued it a moment ago
            continue
        text, subject = _texts(session, due, municipality, account)
        message = queue_outbound(
            session, starting=(account.id, due.booking.contact_id), text=text, subject=subject, author=None,
            automated=True,
        )  # fmt: skip
        reminder = session.exec(
            select(BookingReminder).where(
                BookingReminder.booking_id == due.booking.id, BookingReminder.hours_before == due.hours_before
            )
        ).one()
        reminder.message_id = message.id
        session.commit()
        assert message.id is not None
        queued.append(message.id)
    return queued
