"""Reminders before a booked slot: sent on the citizen's channel through the delivery engine, each exactly once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session, func, select

from hub import db
from hub.consultations import service
from hub.consultations.models import Booking, BookingReminder, ConsultationSlot
from hub.consultations.reminders import queue_due_reminders
from hub.inbox.models import Message
from hub.inbox.outbound import send_message
from hub.settings import Settings
from tests.unit import test_broadcasts as broadcasts
from tests.unit.test_broadcasts import Town, citizen
from workers.tasks import stop_everywhere

# The broadcast tests' town: an SMS and a Telegram account on the sandbox.
sandbox, town = broadcasts.sandbox, broadcasts.town
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ERIKA = "+4915170001111"


def booked(session: Session, town: Town, phone: str = ERIKA) -> tuple[Booking, ConsultationSlot]:
    series = service.define_series(session, municipality=town.municipality, draft=service.SeriesDraft(
        title="Bürgermeistersprechstunde", rrule="FREQ=WEEKLY;BYDAY=TU", first_day=date(2026, 10, 1),
        start_time="17:00", end_time="18:00", slot_minutes=30, host_user_id=town.mayor.id,
        location="in_person", address="Rathaus, Zimmer 1",
    ))  # fmt: skip
    session.commit()
    service.ensure_sessions(session, series=series, municipality=town.municipality, now=NOW)
    first = service.free_slots(session, series=series, now=NOW)[0]
    booking = service.book(session, municipality=town.municipality, slot_id=first.slot_id,
                           contact_id=citizen(session, town, phone), name="Erika", now=NOW)  # fmt: skip
    session.commit()
    slot = session.get(ConsultationSlot, first.slot_id)
    assert slot is not None
    return booking, slot


def reminders(session: Session) -> list[tuple[int, int]]:
    return [(r.booking_id, r.hours_before) for r in session.exec(select(BookingReminder).order_by(BookingReminder.id))]


def test_the_day_before_the_citizen_is_reminded_by_sms_once(session: Session, settings: Settings, town: Town) -> None:
    booking, slot = booked(session, town)
    assert queue_due_reminders(session, now=slot.starts_at - timedelta(hours=25)) == []

    [message_id] = queue_due_reminders(session, now=slot.starts_at - timedelta(hours=23))
    assert queue_due_reminders(session, now=slot.starts_at - timedelta(hours=22)) == []
    assert send_message(settings, message_id, on_opted_out=stop_everywhere).outcome.startswith("sent as")

    [sms] = [item for item in town.sandbox.outbox(kind="twilio") if item["to"] == ERIKA]
    # 3 November, 17:00 in Berlin (16:00 UTC).
    assert sms["text"] == f"Erinnerung: Bürgermeistersprechstunde am 03.11.2026 17:00 Uhr ({booking.reference}). " \
                          "Ort: Rathaus, Zimmer 1."  # fmt: skip
    # An hour before, the second reminder; then nothing more.
    assert len(queue_due_reminders(session, now=slot.starts_at - timedelta(minutes=50))) == 1
    assert queue_due_reminders(session, now=slot.starts_at - timedelta(minutes=10)) == []
    assert reminders(session) == [(booking.id, 24), (booking.id, 1)]


def test_a_hub_that_missed_the_day_before_sends_only_the_last_reminder(session: Session, town: Town) -> None:
    booking, slot = booked(session, town)
    assert len(queue_due_reminders(session, now=slot.starts_at - timedelta(minutes=30))) == 1
    assert reminders(session) == [(booking.id, 1)]


def test_a_cancelled_booking_gets_no_reminder(session: Session, town: Town) -> None:
    booking, slot = booked(session, town)
    assert booking.id is not None
    service.cancel(session, municipality_id=town.id, booking_id=booking.id)
    session.commit()
    assert queue_due_reminders(session, now=slot.starts_at - timedelta(hours=23)) == []
    assert session.exec(select(func.count()).select_from(Message).where(Message.direction == "outbound")).one() == 0


def test_two_sweeps_at_once_queue_each_reminder_once(session: Session, town: Town) -> None:
    _booking, slot = booked(session, town)
    moment = slot.starts_at - timedelta(hours=23)

    def sweep(_: int) -> list[int]:
        with Session(db.get_engine(), expire_on_commit=False) as own:
            return queue_due_reminders(own, now=moment)

    with ThreadPoolExecutor(max_workers=4) as pool:
        queued = [message for found in pool.map(sweep, range(4)) for message in found]

    assert len(queued) == 1
    assert session.exec(select(func.count()).select_from(Message).where(Message.direction == "outbound")).one() == 1
