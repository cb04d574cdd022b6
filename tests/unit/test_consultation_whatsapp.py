"""Reminders and feedback requests on WhatsApp, on both backends: as the town's template for each, or not at all.

WhatsApp refuses free text outside the 24-hour window (the sandbox answers 63016 as it does),
so what the hub starts itself goes as the template approved for it, and a town without one has
the message recorded as not sent, with the reason, on the booking.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from hub.consultations import feedback, service
from hub.consultations.models import Booking, BookingReminder, ConsultationSession, ConsultationSlot, FeedbackRequest
from hub.consultations.reminders import queue_due_reminders
from hub.contacts.service import resolve_contact
from hub.db import utcnow
from hub.inbox.models import Conversation, Message
from hub.tenancy.signin import set_password
from tests.unit import test_whatsapp_inbox as whatsapp
from tests.unit.test_whatsapp_inbox import CITIZEN, WhatsAppTown, send
from tests.unit.web import PASSWORD, sign_in

# A town whose only channel is WhatsApp, on the sandbox, with its webhook in this process.
town = whatsapp.town


def booked(town: WhatsAppTown) -> tuple[Booking, ConsultationSlot]:
    """Erika, known by her number but never written to on WhatsApp, booked at the counter into the next slot."""
    session, municipality = town.session, town.municipality
    assert municipality.id is not None
    series = service.define_series(session, municipality=municipality, draft=service.SeriesDraft(
        title="Bürgermeistersprechstunde", rrule="FREQ=DAILY", first_day=utcnow().date(), start_time="08:00",
        end_time="09:00", slot_minutes=30, capacity=2, host_user_id=town.clerk.id, location="phone",
    ))  # fmt: skip
    service.ensure_sessions(session, series=series, municipality=municipality)
    first = service.free_slots(session, series=series)[0]
    contact = resolve_contact(session, municipality_id=municipality.id, kind="phone", address=CITIZEN)
    booking = service.book(session, municipality=municipality, slot_id=first.slot_id, contact_id=contact.id or 0,
                           name="Erika Mustermann")  # fmt: skip
    session.commit()
    slot = session.get(ConsultationSlot, first.slot_id)
    assert slot is not None
    return booking, slot


def with_templates(town: WhatsAppTown, **templates: str) -> None:
    town.account.config = {**town.account.config, **templates}
    town.session.add(town.account)
    town.session.commit()


def test_a_reminder_goes_as_the_towns_reminder_template(town: WhatsAppTown) -> None:
    notices = town.sandbox.whatsapp_template("Mitteilung Ihres Rathauses: {{1}}")
    reminders = town.sandbox.whatsapp_template("Terminerinnerung: {{1}}")
    with_templates(town, template_de=notices, reminder_template_de=reminders)
    booking, slot = booked(town)

    [message_id] = queue_due_reminders(town.session, now=slot.starts_at - timedelta(minutes=30))
    message = town.session.get(Message, message_id)
    assert message is not None and message.purpose == "reminder"
    assert send(town, message).startswith("sent")
    [item] = town.sandbox.outbox(kind="whatsapp", to=CITIZEN)
    assert item["content_sid"] == reminders
    assert item["text"].startswith("Terminerinnerung: Guten Tag Erika Mustermann, wir erinnern Sie an Ihren Termin: "
                                   "Bürgermeistersprechstunde am ")  # fmt: skip
    assert booking.reference in item["text"]


def test_without_a_reminder_template_the_reminder_is_recorded_as_not_sent_for_staff(town: WhatsAppTown) -> None:
    # The notices' template is no reminder's: WhatsApp approved it for something else.
    with_templates(town, template_de=town.sandbox.whatsapp_template("Mitteilung Ihres Rathauses: {{1}}"))
    booking, slot = booked(town)

    assert queue_due_reminders(town.session, now=slot.starts_at - timedelta(minutes=30)) == []
    assert queue_due_reminders(town.session, now=slot.starts_at - timedelta(minutes=20)) == [], "recorded once"
    [reminder] = town.session.exec(select(BookingReminder)).all()
    assert (reminder.booking_id, reminder.message_id) == (booking.id, None)
    assert reminder.not_sent == (
        "Nicht gesendet (Erinnerung): Für WhatsApp (WhatsApp) ist keine freigegebene Vorlage dafür eingetragen, "
        "und kein anderer Kanal erreicht die Person."
    )
    assert town.sandbox.outbox(kind="whatsapp", to=CITIZEN) == []
    # Staff see it beside the booking; no case was opened.
    assert town.session.exec(select(Conversation)).all() == []
    set_password(town.session, user=town.clerk, password=PASSWORD)
    town.session.commit()
    assert sign_in(town.web, town.clerk.email).status_code == 303
    held = town.session.get(ConsultationSession, booking.session_id)
    assert held is not None
    page = town.web.get(f"/app/consultations/{held.series_id}")
    assert page.status_code == 200 and reminder.not_sent in page.text


def test_a_feedback_request_goes_as_its_template_or_is_recorded_as_not_sent(town: WhatsAppTown) -> None:
    booking, slot = booked(town)
    after = slot.ends_at + timedelta(hours=1)

    assert feedback.queue_feedback_requests(town.session, settings=town.settings, now=after) == []
    request = town.session.exec(select(FeedbackRequest)).one()
    assert request.booking_id == booking.id and request.message_id is None
    assert request.not_sent is not None and request.not_sent.startswith("Nicht gesendet (Bitte um Rückmeldung): ")
    assert feedback.queue_feedback_requests(town.session, settings=town.settings, now=after) == [], "asked once"

    # Another citizen's booking, once the town registered its feedback template.
    asking = town.sandbox.whatsapp_template("Ihre Meinung zählt: {{1}}")
    with_templates(town, feedback_template_de=asking)
    other = resolve_contact(town.session, municipality_id=town.municipality.id or 0, kind="phone",
                            address="+4915112345679")  # fmt: skip
    service.book(town.session, municipality=town.municipality, slot_id=slot.id or 0, contact_id=other.id or 0,
                 name="Max Meier", now=slot.starts_at - timedelta(hours=3))  # fmt: skip
    town.session.commit()
    [message_id] = feedback.queue_feedback_requests(town.session, settings=town.settings, now=after)
    message = town.session.get(Message, message_id)
    assert message is not None and message.purpose == "feedback"
    assert send(town, message).startswith("sent")
    [item] = town.sandbox.outbox(kind="whatsapp", to="+4915112345679")
    assert item["content_sid"] == asking and item["text"].startswith("Ihre Meinung zählt: ")
