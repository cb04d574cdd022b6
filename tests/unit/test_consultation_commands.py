"""Booking and cancelling consultation hours by SMS, Telegram, Messenger and mail: through the webhooks, to the sandbox.

Each citizen's message is posted to the hub's webhook (or handed to its mail intake) in the
provider's wire format, run through the pipeline as the worker runs it, and the answer sent
through the real SDK to the sandbox, where the test reads what the citizen's phone or mailbox got.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from twilio.request_validator import RequestValidator

from channels.sandbox.client import SandboxClient
from channels.sandbox.server import SandboxServer
from hub import ratelimit
from hub import settings as settings_module
from hub.app import create_app
from hub.consultations import service
from hub.consultations.models import Booking, ConsultationOffer, ConsultationSeries, ConsultationSlot
from hub.consultations.recurrence import zone
from hub.contacts import gdpr, merge
from hub.contacts.models import Contact
from hub.contacts.service import resolve_contact
from hub.db import utcnow
from hub.inbox.mail import accept_mail
from hub.inbox.models import Conversation, Message
from hub.inbox.outbound import send_message
from hub.inbox.pipeline import PipelineResult, process_event
from hub.settings import Settings
from hub.tenancy import service as tenancy
from hub.tenancy.models import ChannelAccount, StaffUser
from tests.unit import test_broadcasts as broadcasts
from tests.unit import test_consultations as consultations
from tests.unit.db import Town, make_town
from tests.unit.test_subscribers_commands import survey_sent_to
from workers.tasks import stop_everywhere

FIXTURES = Path(__file__).parent.parent / "fixtures"
# The consultation tests' databases, SQLite and PostgreSQL, and the broadcast tests' sandbox.
any_backend, sandbox = consultations.any_backend, broadcasts.sandbox

PHONE = "+4915112340077"
CHAT = 5012345678
PSID = "7412589630147852"
MAILBOX = "termin@testdorf.example"
SMS_OFFER = re.compile(
    r"Freie Termine \(Bürgermeistersprechstunde\): 1 = \w\w \d\d\.\d\d\. \d\d:\d\d, "
    r"2 = \w\w \d\d\.\d\d\. \d\d:\d\d, 3 = \w\w \d\d\.\d\d\. \d\d:\d\d\. Antworten Sie mit der Zahl\."
)


@pytest.fixture
def settings(any_backend: None) -> Settings:
    ratelimit._limiter.cache_clear()
    return settings_module.get_settings()


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


@dataclass
class Hall:
    """The town hall in this process: webhooks and mail intake, the pipeline as the worker runs it, answers sent."""

    client: TestClient
    session: Session
    settings: Settings
    town: Town
    phone: SandboxClient
    sandbox: SandboxServer
    queued: list[list[int]]
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def account(self, kind: str) -> ChannelAccount:
        return self.town.accounts[kind]

    def run(self) -> PipelineResult:
        """Runs what the last webhook stored and sends its answers, as the worker would."""
        [event_id] = self.queued.pop()
        result = process_event(self.session, self.settings, event_id)
        self.session.commit()
        for message_id in result.to_send:
            assert send_message(self.settings, message_id, on_opted_out=stop_everywhere).outcome.startswith("sent")
        self.session.expire_all()
        return result

    def sms(self, text: str, sender: str = PHONE) -> PipelineResult:
        account = self.account("twilio")
        sid = f"SM{next(self.ids):032d}"
        ids = {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": account.config["account_sid"]}
        form = {**fixture("twilio/message__plain.json"), **ids, "Body": text, "From": sender, "To": account.address}
        path = f"/webhooks/twilio/{account.id}"
        signature = RequestValidator(account.secrets["auth_token"]).compute_signature(
            self.settings.public_url.rstrip("/") + path, form
        )
        answer = self.client.post(path, data=form, headers={"X-Twilio-Signature": signature})
        assert answer.status_code == 200, answer.text
        return self.run()

    def _telegram(self, update: dict[str, Any]) -> PipelineResult:
        account = self.account("telegram")
        answer = self.client.post(
            f"/webhooks/telegram/{account.id}",
            content=json.dumps(update).encode(),
            headers={"X-Telegram-Bot-Api-Secret-Token": account.secrets["webhook_secret"]},
        )
        assert answer.status_code == 200, answer.text
        return self.run()

    def telegram(self, text: str, *, answering: dict[str, Any] | None = None) -> PipelineResult:
        """A message in the bot's chat; `answering`: the bot's message (from the outbox) it replies to."""
        update = fixture("telegram/message__text.json")
        update["update_id"] = next(self.ids)
        update["message"].update(message_id=next(self.ids), text=text, date=int(time.time()))
        if answering is not None:
            update["message"]["reply_to_message"] = {
                "message_id": int(answering["provider_id"]), "chat": update["message"]["chat"],
                "date": int(time.time()), "text": answering["text"],
            }  # fmt: skip
        return self._telegram(update)

    def press(self, label: str) -> PipelineResult:
        """Presses the button so labelled under the bot's last message with buttons, as Telegram reports it."""
        [last] = [item for item in self.phone.outbox(kind="telegram", to=str(CHAT)) if item["reply_markup"]][-1:]
        buttons = {button["text"]: button["callback_data"] for row in last["reply_markup"]["inline_keyboard"]
                   for button in row}  # fmt: skip
        update = fixture("telegram/callback_query__button.json")
        update["update_id"] = next(self.ids)
        update["callback_query"].update(id=str(next(self.ids)), data=buttons[label])
        update["callback_query"]["message"].update(message_id=int(last["provider_id"]), text=last["text"])
        return self._telegram(update)

    def _messenger(self, message: dict[str, Any]) -> PipelineResult:
        account = self.account("facebook")
        page = account.config["page_id"]
        now = int(time.time() * 1000)
        # Messenger itself knows that the citizen wrote, and so opens its 24-hour window for answers.
        self.sandbox.state.note_inbound(page, PSID, now / 1000)
        body = fixture("facebook/messages__text.json")
        body["entry"][0].update(id=page, time=now)
        body["entry"][0]["messaging"][0].update(
            sender={"id": PSID},
            recipient={"id": page},
            timestamp=now,
            message={"mid": f"m_{next(self.ids)}", **message},
        )
        raw = json.dumps(body).encode()
        signature = "sha256=" + hmac.new(account.secrets["app_secret"].encode(), raw, hashlib.sha256).hexdigest()
        answer = self.client.post(
            f"/webhooks/facebook/{account.id}", content=raw, headers={"X-Hub-Signature-256": signature}
        )
        assert answer.status_code == 200, answer.text
        return self.run()

    def messenger(self, text: str) -> PipelineResult:
        return self._messenger({"text": text})

    def tap(self, title: str) -> PipelineResult:
        """Taps the quick reply so titled under the page's last message."""
        [last] = self.phone.outbox(kind="facebook", to=PSID)[-1:]
        payload = {reply["title"]: reply["payload"] for reply in last["quick_replies"]}[title]
        return self._messenger({"text": title, "quick_reply": {"payload": payload}})

    def mail(self, text: str, *, subject: str, in_reply_to: str | None = None) -> PipelineResult:
        mail = EmailMessage()
        mail["From"] = "Erika Mustermann <erika@example.org>"
        mail["To"] = MAILBOX
        mail["Subject"] = subject
        mail["Message-ID"] = make_msgid(domain="example.org")
        if in_reply_to:
            mail["In-Reply-To"] = f"<{in_reply_to}>"
        mail.set_content(text)
        intake = accept_mail(self.account("termin"), mail.as_bytes(), mail_from="erika@example.org", recipient=MAILBOX)
        assert intake.kept and intake.new_events == 1
        return self.run()

    def got(self, kind: str, to: str) -> list[str]:
        """The texts the citizen received on that channel, oldest first."""
        return [item["text"] for item in self.phone.outbox(kind=kind, to=to)]

    def cases(self) -> list[Conversation]:
        return list(self.session.exec(select(Conversation)))

    def bookings(self) -> list[Booking]:
        return list(self.session.exec(select(Booking).order_by(col(Booking.id))))


@pytest.fixture
def hall(
    settings: Settings, session: Session, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Hall]:
    town = make_town(session)
    termin = tenancy.create_channel_account(
        session, municipality_id=town.id, kind="email", name="Sprechstunden",
        config={"address": MAILBOX, "smtp_host": "127.0.0.1", "smtp_port": sandbox.smtp_port},
    )  # fmt: skip
    town.accounts["termin"] = termin
    town.municipality.preferences = {"consultation_address": MAILBOX}
    sandbox_addresses = {
        "twilio": {"api_base_url": sandbox.url},
        "telegram": {"api_base_url": f"{sandbox.url}/bot"},
        "facebook": {"graph_url": f"{sandbox.url}/"},
        "email": {"smtp_port": sandbox.smtp_port},
    }
    phone = SandboxClient(sandbox.url)
    for kind, account in town.accounts.items():
        account.config = {**account.config, **sandbox_addresses.get(kind, {})}
        phone.register_account(kind=account.kind, config=account.config, secrets=account.secrets, webhook_url=None)
    session.add_all([town.municipality, *town.accounts.values()])
    session.commit()
    queued: list[list[int]] = []
    monkeypatch.setattr("hub.webhooks.enqueue_inbound", queued.append)
    monkeypatch.setattr("hub.inbox.mail.enqueue_inbound", queued.append)
    with TestClient(create_app()) as client:
        yield Hall(client, session, settings, town, phone, sandbox, queued)
    phone.close()


def series(hall: Hall, title: str = "Bürgermeistersprechstunde", **overrides: Any) -> ConsultationSeries:
    """Daily office hours from 8 to 9 in quarters of an hour, bookable up to three days ahead."""
    session, town = hall.session, hall.town
    host = session.exec(select(StaffUser).where(StaffUser.email == "bm@testdorf.example")).first()
    if host is None:
        host = tenancy.create_user(
            session, municipality_id=town.id, email="bm@testdorf.example", name="B", role="mayor"
        )
    values: dict[str, Any] = {
        "title": title, "rrule": "FREQ=DAILY", "first_day": date.today() - timedelta(days=1),
        "start_time": "08:00", "end_time": "09:00", "slot_minutes": 15, "opens_days_before": 3,
        "host_user_id": host.id, "location": "in_person", "address": "Rathaus, Zimmer 1",
    }  # fmt: skip
    defined = service.define_series(
        session, municipality=town.municipality, draft=service.SeriesDraft(**values | overrides)
    )
    session.commit()
    return defined


def free(hall: Hall, of: ConsultationSeries) -> list[service.FreeSlot]:
    return service.free_slots(hall.session, series=of)


def local(hall: Hall, slot_id: int) -> str:
    """A slot's start as the citizen reads it: in the town's time zone."""
    slot = hall.session.get(ConsultationSlot, slot_id)
    assert slot is not None
    return slot.starts_at.astimezone(zone(hall.town.municipality.timezone)).strftime("%d.%m.%Y %H:%M")


def known_citizen(hall: Hall, kind: str, address: str, name: str) -> int:
    contact = resolve_contact(hall.session, municipality_id=hall.town.id, kind=kind, address=address, display_name=name)
    hall.session.commit()
    assert contact.id is not None
    return contact.id


# SMS: numbered choices


def test_termin_by_sms_offers_numbered_slots_and_2_books_the_second(hall: Hall) -> None:
    office_hours = series(hall)
    erika = known_citizen(hall, "phone", PHONE, "Erika Mustermann")
    hall.sms("Die Laterne vor Nr. 12 ist dunkel.")
    [case] = hall.cases()
    before = [m.body for m in hall.session.exec(select(Message).where(Message.conversation_id == case.id))]

    offered = hall.sms("Termin")
    assert offered.outcome == f"consultation: slots of series {office_hours.id} offered"
    assert SMS_OFFER.fullmatch(hall.got("twilio", PHONE)[-1]), hall.got("twilio", PHONE)[-1]
    second = free(hall, office_hours)[1]

    booked = hall.sms("2")
    [booking] = hall.bookings()
    assert booked.outcome == f"consultation: booked {booking.reference}"
    assert (booking.slot_id, booking.contact_id, booking.name) == (second.slot_id, erika, "Erika Mustermann")
    assert hall.got("twilio", PHONE)[-1].startswith(
        f"Gebucht: Bürgermeistersprechstunde am {local(hall, second.slot_id)} Uhr ({booking.reference}). "
        "Ort: Rathaus, Zimmer 1. Absagen: ABSAGEN. Ihre Buchung: http://127.0.0.1:8000/sprechstunden/testdorf/buchung/"
    )
    assert second.slot_id not in [slot.slot_id for slot in free(hall, office_hours)]
    # The exchange left the open case alone: no message added, none of it on the case.
    assert hall.cases() == [case]
    assert [m.body for m in hall.session.exec(select(Message).where(Message.conversation_id == case.id))] == before
    assert hall.session.exec(select(ConsultationOffer)).all() == [], "the answered offer is gone"
    # A digit now answers nothing: it is a message for staff again.
    assert hall.sms("2").outcome == "stored"


def test_a_citizen_the_hub_has_no_name_for_is_asked_for_it_first(hall: Hall) -> None:
    office_hours = series(hall)
    hall.sms("TERMIN")
    first = free(hall, office_hours)[0]

    assert hall.sms("1").outcome == "consultation: name asked"
    assert hall.got("twilio", PHONE)[-1] == (
        f"Wie heißen Sie? Antworten Sie bitte mit Ihrem Namen, dann buchen wir Ihnen den Termin am "
        f"{local(hall, first.slot_id)} Uhr."
    )
    assert hall.bookings() == []
    booked = hall.sms("Max  Meier")
    [booking] = hall.bookings()
    assert booked.outcome == f"consultation: booked {booking.reference}"
    assert (booking.slot_id, booking.name) == (first.slot_id, "Max Meier")
    assert hall.got("twilio", PHONE)[-1].startswith("Gebucht: Bürgermeistersprechstunde")
    contact = hall.session.get(Contact, booking.contact_id)
    assert contact is not None and contact.display_name == "Max Meier"
    assert hall.cases() == []


def test_the_last_place_taken_meanwhile_is_answered_with_the_next_free_slots(hall: Hall) -> None:
    office_hours = series(hall)
    known_citizen(hall, "phone", PHONE, "Erika Mustermann")
    hall.sms("TERMIN")
    offered = free(hall, office_hours)
    # Someone else books the second slot by phone with the office, before Erika answers.
    service.book_for(hall.session, municipality=hall.town.municipality, slot_id=offered[1].slot_id, name="Max",
                     phone="+4915112340099", email=None)  # fmt: skip
    hall.session.commit()

    again = hall.sms("2")
    assert again.outcome == f"consultation: slots of series {office_hours.id} offered, the chosen one was taken"
    text = hall.got("twilio", PHONE)[-1]
    assert text.startswith("Dieser Termin ist inzwischen vergeben. Freie Termine (Bürgermeistersprechstunde): 1 = ")
    now_free = free(hall, office_hours)
    assert offered[1].slot_id not in [slot.slot_id for slot in now_free]
    assert [booking.name for booking in hall.bookings()] == ["Max"]

    hall.sms("2")
    assert [(booking.name, booking.slot_id) for booking in hall.bookings()] == [
        ("Max", offered[1].slot_id),
        ("Erika Mustermann", now_free[1].slot_id),
    ]
    assert hall.cases() == []


def test_absagen_cancels_the_next_booking_and_frees_its_place(hall: Hall) -> None:
    office_hours = series(hall)
    known_citizen(hall, "phone", PHONE, "Erika Mustermann")
    assert hall.sms("ABSAGEN").outcome == "consultation: nothing to cancel"
    assert hall.got("twilio", PHONE)[-1].startswith("Sie haben zurzeit keinen gebuchten Termin.")
    hall.sms("TERMIN")
    hall.sms("1")
    [booking] = hall.bookings()
    assert booking.slot_id not in [slot.slot_id for slot in free(hall, office_hours)]

    cancelled = hall.sms("absagen")
    assert cancelled.outcome == f"consultation: cancelled {booking.reference}"
    hall.session.refresh(booking)
    assert booking.status == "cancelled"
    assert hall.got("twilio", PHONE)[-1] == (
        f"Abgesagt: Bürgermeistersprechstunde am {local(hall, booking.slot_id)} Uhr ({booking.reference}). "
        "Neuer Termin: TERMIN"
    )
    assert free(hall, office_hours)[0].slot_id == booking.slot_id, "the place is free again"
    assert hall.cases() == []


def test_with_several_bookings_absagen_asks_which_one(hall: Hall) -> None:
    series(hall)
    series(hall, "Offene Sprechstunde Bauamt", capacity=10, slot_minutes=60)
    known_citizen(hall, "phone", PHONE, "Erika Mustermann")
    for number in ("1", "2"):  # one in each series
        assert hall.sms("TERMIN").outcome == "consultation: series offered"
        assert hall.got("twilio", PHONE)[-1] == (
            "Welche Sprechstunde? 1 = Bürgermeistersprechstunde, 2 = Offene Sprechstunde Bauamt. "
            "Antworten Sie mit der Zahl."
        )
        hall.sms(number)
        hall.sms("1")
    soonest_first = sorted(
        hall.bookings(), key=lambda booking: hall.session.get(ConsultationSlot, booking.slot_id).starts_at
    )  # type: ignore[union-attr]
    assert len(soonest_first) == 2

    assert hall.sms("ABSAGEN").outcome == "consultation: cancel choice offered"
    choice = hall.got("twilio", PHONE)[-1]
    assert choice.startswith("Welchen Termin möchten Sie absagen? 1 = ") and choice.endswith(
        "Antworten Sie mit der Zahl."
    )
    assert "(Bürgermeistersprechstunde)" in choice and "(Offene Sprechstunde Bauamt)" in choice
    assert hall.sms("2").outcome == f"consultation: cancelled {soonest_first[1].reference}"
    assert {booking.reference: booking.status for booking in hall.bookings()} == {
        soonest_first[0].reference: "booked",
        soonest_first[1].reference: "cancelled",
    }
    assert hall.cases() == []


def test_cancel_alone_still_stops_the_subscription(hall: Hall) -> None:
    """CANCEL is a STOP keyword (and Twilio's own opt-out word): it never only cancels an appointment."""
    series(hall)
    known_citizen(hall, "phone", PHONE, "Erika Mustermann")
    hall.sms("TERMIN")
    hall.sms("1")
    assert hall.sms("CANCEL").outcome.startswith("command: stop")
    assert [booking.status for booking in hall.bookings()] == ["booked"]
    assert hall.sms("Cancel appointment").outcome.startswith("consultation: cancelled")


def test_a_stray_digit_without_an_offer_passes_on_to_staff(hall: Hall) -> None:
    series(hall)
    result = hall.sms("2")
    assert result.outcome.startswith("stored, acknowledged with ")
    [case] = hall.cases()
    assert case.status == "open" and hall.bookings() == []
    # So does one after the offer ran out.
    hall.sms("TERMIN")
    offer = hall.session.exec(select(ConsultationOffer)).one()
    offer.expires_at = utcnow() - timedelta(seconds=1)
    hall.session.commit()
    assert hall.sms("1").outcome == "stored"
    assert hall.bookings() == []


def test_a_digit_answers_the_survey_unless_an_offer_of_slots_is_open(hall: Hall) -> None:
    series(hall)
    erika = known_citizen(hall, "phone", PHONE, "Erika Mustermann")
    survey = survey_sent_to(hall.session, hall.town, erika)
    assert hall.sms("2").outcome == f"survey: broadcast {survey.id} option 2"
    hall.sms("TERMIN")
    assert hall.sms("2").outcome.startswith("consultation: booked ")
    assert len(hall.bookings()) == 1 and hall.cases() == []


# Telegram and Messenger: buttons


def test_telegram_buttons_pick_the_series_then_the_slot(hall: Hall) -> None:
    office_hours = series(hall)
    series(hall, "Offene Sprechstunde Bauamt", capacity=10, slot_minutes=60)

    assert hall.telegram("/termin").outcome == "consultation: series offered"
    [series_offer] = hall.phone.outbox(kind="telegram", to=str(CHAT))
    assert series_offer["text"] == "Welche Sprechstunde möchten Sie buchen?"
    titles = [button["text"] for row in series_offer["reply_markup"]["inline_keyboard"] for button in row]
    assert titles == ["Bürgermeistersprechstunde", "Offene Sprechstunde Bauamt"]

    hall.press("Bürgermeistersprechstunde")
    slots_offer = hall.phone.outbox(kind="telegram", to=str(CHAT))[-1]
    assert slots_offer["text"] == "Freie Termine – Bürgermeistersprechstunde. Bitte wählen Sie einen Termin:"
    labels = [button["text"] for row in slots_offer["reply_markup"]["inline_keyboard"] for button in row]
    assert len(labels) == 5 and all(re.fullmatch(r"\w\w \d\d\.\d\d\. \d\d:\d\d", label) for label in labels)
    second = free(hall, office_hours)[1]

    pressed = hall.press(labels[1])
    [booking] = hall.bookings()
    assert pressed.outcome == f"consultation: booked {booking.reference}"
    assert (booking.slot_id, booking.name) == (second.slot_id, "Jürgen Müller")
    confirmation = hall.got("telegram", str(CHAT))[-1]
    assert confirmation.startswith(
        f"Guten Tag Jürgen Müller,\n\nIhr Termin ist gebucht: Bürgermeistersprechstunde am "
        f"{local(hall, second.slot_id)} Uhr.\nBuchungsnummer: {booking.reference}\n"
    )
    assert "Ort: Rathaus, Zimmer 1" in confirmation and "ABSAGEN" in confirmation
    assert hall.cases() == []

    # A button of the answered offer books nothing more.
    assert hall.press(labels[0]).outcome == "consultation: button of an old offer"
    assert hall.got("telegram", str(CHAT))[-1].startswith("Diese Auswahl gilt nicht mehr.")
    assert len(hall.bookings()) == 1


def test_messenger_quick_replies_book_after_asking_the_name(hall: Hall) -> None:
    office_hours = series(hall)
    assert hall.messenger("Termin").outcome == f"consultation: slots of series {office_hours.id} offered"
    [offer] = hall.phone.outbox(kind="facebook", to=PSID)
    assert offer["text"] == "Freie Termine – Bürgermeistersprechstunde. Bitte wählen Sie einen Termin:"
    titles = [reply["title"] for reply in offer["quick_replies"]]
    assert len(titles) == 5
    first = free(hall, office_hours)[0]

    assert hall.tap(titles[0]).outcome == "consultation: name asked"
    assert hall.got("facebook", PSID)[-1].startswith("Wie heißen Sie?")
    assert hall.messenger("Erika Mustermann").outcome.startswith("consultation: booked ")
    [booking] = hall.bookings()
    assert (booking.slot_id, booking.name) == (first.slot_id, "Erika Mustermann")
    assert hall.got("facebook", PSID)[-1].startswith("Guten Tag Erika Mustermann,\n\nIhr Termin ist gebucht:")

    assert hall.messenger("ABSAGEN").outcome == f"consultation: cancelled {booking.reference}"
    assert hall.got("facebook", PSID)[-1].startswith(
        "Guten Tag Erika Mustermann,\n\nIhr Termin Bürgermeistersprechstunde"
    )
    assert hall.cases() == []


def test_an_english_speaker_gets_english_slots_and_confirmation(hall: Hall) -> None:
    series(hall)
    resolve_contact(hall.session, municipality_id=hall.town.id, kind="facebook", address=PSID, display_name="Ann",
                    language="en")  # fmt: skip
    hall.session.commit()
    hall.messenger("APPOINTMENT")
    offer = hall.phone.outbox(kind="facebook", to=PSID)[-1]
    assert offer["text"] == "Free slots – Bürgermeistersprechstunde. Please choose one:"
    assert all(
        re.fullmatch(r"[A-Z][a-z]{2} \d\d\.\d\d\. \d\d:\d\d", reply["title"]) for reply in offer["quick_replies"]
    )
    hall.tap(offer["quick_replies"][0]["title"])
    assert hall.got("facebook", PSID)[-1].startswith(
        "Hello Ann,\n\nYour appointment is booked: Bürgermeistersprechstunde"
    )


# Mail to the consultation address


def test_a_mail_to_the_consultation_address_gets_slots_and_the_answer_books_with_its_concern(hall: Hall) -> None:
    office_hours = series(hall)
    concern = "Ich möchte über die Parkplätze am Marktplatz sprechen."
    asked = hall.mail(concern, subject="Sprechstunde")
    assert asked.outcome == f"consultation: slots of series {office_hours.id} offered"
    [offer] = hall.phone.outbox(kind="email", to="erika@example.org")
    assert offer["subject"] == "Re: Sprechstunde"
    lines = offer["text"].splitlines()
    assert lines[0] == "Freie Termine – Bürgermeistersprechstunde:"
    assert [line[:4] for line in lines[2:7]] == ["1 = ", "2 = ", "3 = ", "4 = ", "5 = "]
    assert lines[-1] == "Antworten Sie mit der Zahl des Termins, den Sie buchen möchten."
    third = free(hall, office_hours)[2]

    sent = hall.session.exec(select(Message).where(Message.direction == "outbound")).one()
    assert sent.email_message_id is not None
    quoted = "\n".join("> " + line for line in offer["text"].splitlines())
    attribution = f"Am 07.12.2026 um 14:03 schrieb Gemeinde Testdorf <{MAILBOX}>:"
    reply = f"3\n\nViele Grüße\nErika\n\n{attribution}\n{quoted}"
    booked = hall.mail(reply, subject="Re: Sprechstunde", in_reply_to=sent.email_message_id)
    [booking] = hall.bookings()
    assert booked.outcome == f"consultation: booked {booking.reference}"
    assert (booking.slot_id, booking.name, booking.concern) == (third.slot_id, "Erika Mustermann", concern)
    confirmation = hall.phone.outbox(kind="email", to="erika@example.org")[-1]
    assert confirmation["subject"] == (
        f"Termin gebucht: Bürgermeistersprechstunde am {local(hall, third.slot_id)} Uhr ({booking.reference})"
    )
    assert f"Buchungsnummer: {booking.reference}" in confirmation["text"]
    # The mails stay out of the inbox; the concern they carried is the one case, for staff to prepare.
    [prepared] = hall.cases()
    assert booking.conversation_id == prepared.id


def test_mail_to_the_town_halls_own_address_is_still_a_case(hall: Hall) -> None:
    series(hall)
    account = hall.account("email")
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "erika@example.org", account.address, "Sprechstunde"
    mail["Message-ID"] = make_msgid(domain="example.org")
    mail.set_content("Wann ist die nächste Sprechstunde?")
    accept_mail(account, mail.as_bytes(), mail_from="erika@example.org", recipient=account.address)
    assert hall.run().outcome.startswith("stored, acknowledged with ")
    assert hall.bookings() == [] and len(hall.cases()) == 1


def test_the_concern_of_an_open_offer_is_in_the_export_and_goes_with_the_erasure(hall: Hall) -> None:
    series(hall)
    hall.mail("Es geht um den Bauantrag Lindenstraße 3.", subject="Termin bitte")
    offer = hall.session.exec(select(ConsultationOffer)).one()
    [exported] = gdpr.export_contact(hall.session, hall.town.id, offer.contact_id)["consultation_offers"]  # type: ignore[index]
    assert exported["concern"] == "Es geht um den Bauantrag Lindenstraße 3."
    gdpr.erase_contact(hall.session, municipality_id=hall.town.id, contact_id=offer.contact_id, actor_id=None)
    hall.session.commit()
    assert hall.session.exec(select(ConsultationOffer)).all() == []


# Questions in advance, sent later on any channel


def test_what_a_citizen_with_a_booking_writes_on_another_channel_joins_the_booking_case(hall: Hall) -> None:
    office_hours = series(hall, host_user_id=None, host_team_id=tenancy.create_team(
        hall.session, municipality_id=hall.town.id, name="Bauamt").id)  # fmt: skip
    erika = known_citizen(hall, "phone", PHONE, "Erika Mustermann")
    merge.merge(hall.session, municipality_id=hall.town.id, target_id=erika,
                source_id=known_citizen(hall, "telegram", str(CHAT), "Erika"))  # fmt: skip
    service.ensure_sessions(hall.session, series=office_hours, municipality=hall.town.municipality)
    booking = service.book_for(hall.session, municipality=hall.town.municipality, name="Erika Mustermann",
                               slot_id=free(hall, office_hours)[0].slot_id, phone=PHONE, email=None,
                               concern="Es geht um meinen Carport.")  # fmt: skip
    hall.session.commit()
    [case] = hall.cases()
    assert case.channel_account_id == hall.account("twilio").id and case.team_id == office_hours.host_team_id

    assert hall.telegram("Ich bringe die Pläne als PDF mit.").outcome == "stored"
    assert hall.cases() == [case], "no case of its own on Telegram"
    later = hall.session.exec(select(Message).where(Message.body == "Ich bringe die Pläne als PDF mit.")).one()
    assert (later.conversation_id, later.channel_account_id) == (case.id, hall.account("telegram").id)
    assert hall.session.get(Booking, booking.id).conversation_id == case.id  # type: ignore[union-attr]

    # Once staff resolved the concern, a message that does not answer the booking is a case as always.
    hall.session.get(Conversation, case.id).status = "resolved"  # type: ignore[union-attr]
    hall.session.commit()
    assert hall.telegram("Wann ist Sperrmüll?").outcome.startswith("stored, acknowledged with ")
    assert len(hall.cases()) == 2


def test_a_reply_to_a_booking_message_opens_a_case_linked_to_the_booking(hall: Hall) -> None:
    office_hours = series(hall)
    hall.telegram("/termin")
    hall.press(hall.phone.outbox(kind="telegram", to=str(CHAT))[-1]["reply_markup"]["inline_keyboard"][0][0]["text"])
    [booking] = hall.bookings()
    confirmation = hall.phone.outbox(kind="telegram", to=str(CHAT))[-1]
    assert booking.reference in confirmation["text"] and hall.cases() == []
    # A message that answers nothing of the booking, with no case to join, stays the inbox's own.
    assert hall.sms("Die Laterne ist dunkel.", sender="+4915112340088").outcome.startswith("stored, acknowledged")

    answered = hall.telegram("Kann ich meine Tochter mitbringen?", answering=confirmation)
    [_, case] = sorted(hall.cases(), key=lambda found: found.id or 0)
    assert answered.outcome == f"stored, acknowledged with {case.reference}"
    assert hall.session.get(Booking, booking.id).conversation_id == case.id  # type: ignore[union-attr]
    assert (case.subject, case.assignee_id) == (f"Bürgermeistersprechstunde ({booking.reference})",
                                                office_hours.host_user_id)  # fmt: skip
    [question] = hall.session.exec(select(Message).where(Message.conversation_id == case.id,
                                                         Message.direction == "inbound")).all()  # fmt: skip
    assert question.body == "Kann ich meine Tochter mitbringen?"
    # A cancelled booking takes no more messages: the next one is the inbox's as always.
    service.cancel(hall.session, municipality_id=hall.town.id, booking_id=booking.id or 0)
    hall.session.get(Conversation, case.id).status = "resolved"  # type: ignore[union-attr]
    hall.session.commit()
    hall.telegram("Danke!", answering=confirmation)
    assert hall.session.get(Conversation, case.id).status == "resolved"  # type: ignore[union-attr]


def test_a_mail_answering_the_booking_confirmation_joins_the_booking_case(hall: Hall) -> None:
    series(hall)
    hall.mail("Es geht um den Bauantrag Lindenstraße 3.", subject="Termin")
    offer = hall.session.exec(select(Message).where(Message.direction == "outbound")).one()
    hall.mail("1", subject="Re: Termin", in_reply_to=offer.email_message_id)
    [booking] = hall.bookings()
    confirmation = hall.session.exec(
        select(Message).where(Message.direction == "outbound").order_by(col(Message.id).desc())
    ).first()
    assert confirmation is not None and booking.reference in confirmation.body
    [case] = hall.cases()
    assert booking.conversation_id == case.id

    hall.mail("Die Bauzeichnung hänge ich an.", subject="Re: Termin gebucht", in_reply_to=confirmation.email_message_id)
    assert [m.body for m in hall.session.exec(select(Message).where(Message.conversation_id == case.id))] == [
        "Es geht um den Bauantrag Lindenstraße 3.", "Die Bauzeichnung hänge ich an.",
    ]  # fmt: skip
