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
from hub.consultations.models import (
    Booking,
    BookingReminder,
    ConsultationSeries,
    ConsultationSession,
    ConsultationSlot,
    FeedbackRequest,
)
from hub.consultations.recurrence import zone
from hub.contacts.models import Contact
from hub.contacts.service import identities_of
from hub.db import utcnow
from hub.i18n import DEFAULT_LANGUAGE, N_
from hub.inbox.service import queue_outbound
from hub.templating import greeting, render_message
from hub.tenancy.models import ChannelAccount, Municipality
from hub.tenancy.service import channel_reaching, channels_reaching

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


@dataclass(frozen=True)
class Reach:
    """Where a message the hub starts for `purpose` leaves from, or, when none can carry it, the account passed over."""

    account: ChannelAccount | None
    passed_over: ChannelAccount | None = None


def reach_for(session: Session, *, municipality_id: int, contact_id: int, language: str, purpose: str) -> Reach:
    """The town's first account reaching the citizen that may carry a `purpose` message ("reminder", "feedback").

    An account that sends only approved templates once its reply window has closed (WhatsApp
    after 24 hours) needs the town's template for that purpose, since the window may close
    before the message leaves: one without is passed over for the next account that reaches the
    citizen (SMS to the same number, mail), never used for a text the provider would refuse.
    """
    passed_over = None
    for identity in identities_of(session, contact_id=contact_id):
        for account in channels_reaching(session, municipality_id=municipality_id, identity=identity.kind):
            adapter = adapter_class(account.kind)
            templated = adapter.template_for(account.config, language, purpose) or adapter.template_for(
                account.config, DEFAULT_LANGUAGE, purpose
            )
            if not adapter.templates_outside_window or templated:
                return Reach(account)
            passed_over = passed_over or account
    return Reach(None, passed_over)


def not_sent(account: ChannelAccount, what: str) -> str:
    """Why a message for `what` (a German msgid) did not go, as staff read it on the booking."""
    label = adapter_class(account.kind).label
    reason = N_(
        "Nicht gesendet ({what}): Für {channel} ({account}) ist keine freigegebene Vorlage dafür eingetragen, "
        "und kein anderer Kanal erreicht die Person."
    )
    return reason.format(what=what, channel=label, account=account.name)


def not_sent_of(session: Session, *, booking_ids: list[int]) -> dict[int, list[str]]:
    """Why reminders and feedback requests of these bookings did not go, by booking, for staff to see."""
    reasons: dict[int, list[str]] = {}
    rows = [
        *session.exec(select(BookingReminder.booking_id, BookingReminder.not_sent).where(
            col(BookingReminder.booking_id).in_(booking_ids), col(BookingReminder.not_sent).is_not(None))),
        *session.exec(select(FeedbackRequest.booking_id, FeedbackRequest.not_sent).where(
            col(FeedbackRequest.booking_id).in_(booking_ids), col(FeedbackRequest.not_sent).is_not(None))),
    ]  # fmt: skip
    for booking_id, reason in rows:
        if booking_id is not None and reason:
            reasons.setdefault(booking_id, []).append(reason)
    return reasons


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

    A citizen the town cannot reach on any channel is skipped, and stays so until one exists;
    one whose only channel cannot carry a reminder gets it recorded as not sent, with the reason.
    """
    now = now or utcnow()
    queued = []
    for due in due_reminders(session, now=now):
        municipality = session.get(Municipality, due.booking.municipality_id)
        contact = session.get(Contact, due.booking.contact_id)
        reach = reach_for(
            session, municipality_id=due.booking.municipality_id, contact_id=due.booking.contact_id,
            language=contact.language if contact else DEFAULT_LANGUAGE, purpose="reminder",
        )  # fmt: skip
        account = reach.account
        if municipality is None or (account is None and reach.passed_over is None):
            continue
        assert due.booking.id is not None
        session.add(
            BookingReminder(
                booking_id=due.booking.id, hours_before=due.hours_before, created_at=now,
                not_sent=not_sent(reach.passed_over, N_("Erinnerung")) if reach.passed_over and not account else None,
            )
        )  # fmt: skip
        try:
            session.flush()
        except IntegrityError:
            session.rollback()  # another sweep queued it a moment ago
            continue
        if account is None or account.id is None:
            session.commit()  # recorded as not sent, for staff to see on the booking
            continue
        text, subject = _texts(session, due, municipality, account)
        message = queue_outbound(
            session, starting=(account.id, due.booking.contact_id), text=text, subject=subject, author=None,
            automated=True, purpose="reminder",
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
