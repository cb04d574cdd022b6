"""The citizens' booking pages on both backends: codes and mails through the sandbox; the booking's links."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, timedelta

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlmodel import Session, col, select

from channels.sandbox.client import SandboxClient
from channels.sandbox.server import SandboxServer
from hub import db, ratelimit
from hub.app import create_app
from hub.consultations import service
from hub.consultations.models import Booking, ConsultationSeries, ConsultationSlot
from hub.contacts.service import resolve_contact
from hub.db import utcnow
from hub.errors import InvalidInput
from hub.inbox.models import Conversation, Message
from hub.inbox.outbound import send_message
from hub.settings import get_settings
from hub.subscribers import verification
from hub.subscribers.demo import seed_subscriber_demo
from hub.subscribers.models import Subscription
from hub.tenancy import service as tenancy
from hub.tenancy.models import Municipality, Team
from hub.tenancy.signin import set_password
from hub.web.security import CSRF_COOKIE
from tests.unit import test_consultations
from tests.unit.web import PASSWORD, sign_in
from workers.tasks import stop_everywhere

# SQLite in a fresh folder, or a new database on PostgreSQL.
any_backend = test_consultations.any_backend
PHONE = "+4915112345678"


@dataclass
class Town:
    municipality: Municipality
    series: ConsultationSeries
    team: Team
    sandbox: SandboxClient
    api: TestClient


@pytest.fixture
def session(any_backend: None) -> Iterator[Session]:
    ratelimit._limiter.cache_clear()
    with Session(db.get_engine(), expire_on_commit=False) as session:
        yield session


@pytest.fixture
def town(session: Session) -> Iterator[Town]:
    with SandboxServer() as sandbox:
        municipality = tenancy.create_municipality(session, slug="musterdorf", name="Gemeinde Musterdorf")
        assert municipality.id is not None
        seed_subscriber_demo(session, municipality.id)
        sms = tenancy.create_channel_account(
            session, municipality_id=municipality.id, kind="twilio", name="SMS",
            config={"account_sid": "AC" + "5" * 32, "phone_number": "+4930555000", "api_base_url": sandbox.url},
            secrets_={"auth_token": "t"},
        )  # fmt: skip
        tenancy.create_channel_account(
            session, municipality_id=municipality.id, kind="email", name="Mail",
            config={"address": "rathaus@musterdorf.example", "smtp_host": "127.0.0.1", "smtp_port": sandbox.smtp_port},
        )  # fmt: skip
        team = tenancy.create_team(session, municipality_id=municipality.id, name="Bauamt")
        user = tenancy.create_user(session, municipality_id=municipality.id, email="a@x.de", name="A", role="staff")
        token = tenancy.create_api_token(session, user=user, name="test")
        series = service.define_series(session, municipality=municipality, draft=service.SeriesDraft(
            title="Sprechstunde Bauamt", rrule="FREQ=DAILY", first_day=utcnow().date(), start_time="09:00",
            end_time="10:00", slot_minutes=30, host_team_id=team.id, location="in_person", address="Rathaus, Zimmer 1",
        ))  # fmt: skip
        session.commit()
        client = SandboxClient(sandbox.url)
        client.register_account(kind=sms.kind, config=sms.config, secrets=sms.secrets, webhook_url=None)
        api = TestClient(create_app(), headers={"Authorization": f"Bearer {token}"})
        yield Town(municipality=municipality, series=series, team=team, sandbox=client, api=api)


@pytest.fixture
def citizen(session: Session) -> TestClient:
    return TestClient(create_app())


def form(client: TestClient, path: str, data: dict[str, object], **kwargs: object):  # type: ignore[no-untyped-def]
    if CSRF_COOKIE not in client.cookies:
        client.get(path)
    return client.post(path, data={"csrf_token": client.cookies[CSRF_COOKIE], **data}, **kwargs)  # type: ignore[arg-type]


def first_slots(session: Session, town: Town, count: int = 2) -> list[int]:
    service.ensure_sessions(session, series=town.series, municipality=town.municipality)
    return [free.slot_id for free in service.free_slots(session, series=town.series)[:count]]


def last_to(town: Town, address: str, kind: str) -> dict[str, object]:
    return town.sandbox.outbox(kind=kind, to=address)[-1]


def code_for(town: Town) -> str:
    found = re.search(r"\b(\d{6})\b", str(last_to(town, PHONE, "twilio")["text"]))
    assert found
    return found.group(1)


def send_confirmations(session: Session) -> None:
    """What the worker does with the queued confirmations: send them through the delivery engine."""
    queued = session.exec(select(Message.id).where(Message.direction == "outbound", Message.status == "queued")).all()
    for message_id in queued:
        assert message_id is not None
        assert send_message(get_settings(), message_id, on_opted_out=stop_everywhere).outcome.startswith("sent")


def book_by_phone(citizen: TestClient, town: Town, slot_id: int, **extra: str):  # type: ignore[no-untyped-def]
    started = form(citizen, f"/sprechstunden/musterdorf/termin/{slot_id}",
                   {"name": "Erika Muster", "way": "phone", "phone": "0151 12345678", **extra},
                   follow_redirects=False)  # fmt: skip
    assert started.status_code == 303 and started.headers["location"] == "/sprechstunden/musterdorf/code"
    return started


def test_booking_by_phone_code_confirms_by_sms_with_links(session: Session, town: Town, citizen: TestClient) -> None:
    listed = citizen.get("/sprechstunden/musterdorf")
    assert "Sprechstunde Bauamt" in listed.text and "Vor Ort: Rathaus, Zimmer 1" in listed.text
    page = citizen.get(f"/sprechstunden/musterdorf/{town.series.id}")
    assert "09:00 Uhr" in page.text and "09:30 Uhr" in page.text
    [slot_id] = first_slots(session, town, 1)
    assert "Ihr Anliegen (freiwillig)" in citizen.get(f"/sprechstunden/musterdorf/termin/{slot_id}").text

    book_by_phone(citizen, town, slot_id)
    assert session.exec(select(Booking)).first() is None  # nothing is booked before the code
    assert "an +4915112345678 geschickt" in citizen.get("/sprechstunden/musterdorf/code").text
    assert "Terminbuchung" in str(last_to(town, PHONE, "twilio")["text"])
    wrong = form(
        citizen, "/sprechstunden/musterdorf/code", {"code": "000000" if code_for(town) != "000000" else "1" * 6}
    )
    assert wrong.status_code == 422 and "Der Code stimmt nicht" in wrong.text
    with pytest.raises(InvalidInput, match="keinen gültigen Code"):  # a booking's code subscribes no one
        verification.verify_code(session, municipality=town.municipality, phone=PHONE, code=code_for(town),
                                 client_ip=None, user_agent=None)  # fmt: skip
    done = form(citizen, "/sprechstunden/musterdorf/code", {"code": code_for(town)}, follow_redirects=False)
    assert done.status_code == 303 and "/sprechstunden/musterdorf/buchung/" in done.headers["location"]
    booking = session.exec(select(Booking)).one()
    assert session.exec(select(Subscription)).first() is None
    confirmation = citizen.get(done.headers["location"]).text
    assert booking.reference in confirmation and "Ihr Termin ist gebucht" in confirmation
    assert "termin.ics" in confirmation and "/absagen" in confirmation and "/verschieben" in confirmation

    send_confirmations(session)
    sms = str(last_to(town, PHONE, "twilio")["text"])
    assert sms.startswith("Gebucht: Sprechstunde Bauamt am ") and booking.reference in sms
    # The message's link is signed when the message is written, the page's when it is answered: a second apart,
    # their tokens differ; both open the same booking.
    link = re.search(r"https?://[^/\s]+(/sprechstunden/musterdorf/buchung/\S+)", sms)
    assert link is not None and booking.reference in citizen.get(link.group(1)).text


def test_booking_by_email_link_mails_the_calendar_file(session: Session, town: Town, citizen: TestClient) -> None:
    [slot_id] = first_slots(session, town, 1)
    asked = form(citizen, f"/sprechstunden/musterdorf/termin/{slot_id}",
                 {"name": "Max", "way": "email", "email": "Max@Example.org"}, follow_redirects=False)  # fmt: skip
    assert asked.headers["location"] == "/sprechstunden/musterdorf/email/gesendet"
    mail = last_to(town, "max@example.org", "email")
    link = re.search(r"http\S+/bestaetigen\?token=\S+", str(mail["text"]))
    assert link and "Guten Tag Max" in str(mail["text"])
    path = "/" + link.group(0).split("://", 1)[1].split("/", 1)[1]
    assert "Termin verbindlich buchen" in citizen.get(path).text
    assert session.exec(select(Booking)).first() is None  # opening the link alone books nothing
    booked = form(citizen, path, {}, follow_redirects=False)
    assert booked.status_code == 303
    assert form(citizen, path, {}, follow_redirects=False).status_code == 303
    assert len(session.exec(select(Booking)).all()) == 1  # following it twice books once

    send_confirmations(session)
    confirmation = last_to(town, "max@example.org", "email")
    assert str(confirmation["subject"]).strip().startswith("Termin gebucht: Sprechstunde Bauamt")
    [attached] = confirmation["attachments"]  # type: ignore[misc]
    assert attached["filename"].endswith(".ics") and attached["content_type"] == "text/calendar"


def test_the_calendar_file_starts_at_the_slot_in_utc(session: Session, town: Town, citizen: TestClient) -> None:
    [slot_id] = first_slots(session, town, 1)
    book_by_phone(citizen, town, slot_id)
    done = form(citizen, "/sprechstunden/musterdorf/code", {"code": code_for(town)}, follow_redirects=False)
    answer = citizen.get(done.headers["location"] + "/termin.ics")
    assert answer.headers["content-type"].startswith("text/calendar")
    assert "DTSTART:" in answer.text and re.search(r"DTSTART:\d{8}T\d{6}Z", answer.text)
    [event] = Calendar.from_ical(answer.content).walk("VEVENT")
    slot = session.get(ConsultationSlot, slot_id)
    assert slot is not None
    assert event.decoded("dtstart") == slot.starts_at.astimezone(UTC)
    assert event.decoded("dtend") - event.decoded("dtstart") == timedelta(minutes=30)
    assert str(event["location"]) == "Rathaus, Zimmer 1"


def test_a_slot_taken_meanwhile_offers_the_next_free_ones(session: Session, town: Town, citizen: TestClient) -> None:
    first, second = first_slots(session, town, 2)
    book_by_phone(citizen, town, first)
    other = resolve_contact(session, municipality_id=town.municipality.id or 0, kind="phone", address="+4915199999999")
    service.book(session, municipality=town.municipality, slot_id=first, contact_id=other.id or 0, name="Schneller")
    session.commit()
    taken = form(citizen, "/sprechstunden/musterdorf/code", {"code": code_for(town)})
    assert taken.status_code == 409 and "Dieser Termin ist inzwischen vergeben. Freie Termine:" in taken.text
    assert f"/termin/{second}/nehmen" in taken.text
    instead = form(citizen, f"/sprechstunden/musterdorf/termin/{second}/nehmen", {}, follow_redirects=False)
    assert instead.status_code == 303  # proven a moment ago: no new code needed
    mine = session.exec(select(Booking).where(Booking.name == "Erika Muster")).one()
    assert mine.slot_id == second


def test_cancelling_by_link_frees_the_place_and_a_tampered_link_is_refused(
    session: Session, town: Town, citizen: TestClient
) -> None:
    [slot_id] = first_slots(session, town, 1)
    book_by_phone(citizen, town, slot_id)
    page = form(citizen, "/sprechstunden/musterdorf/code", {"code": code_for(town)}, follow_redirects=False)
    booking_path = page.headers["location"]
    tampered = citizen.get(booking_path[:-3] + ("abc" if not booking_path.endswith("abc") else "xyz") + "/absagen")
    assert tampered.status_code == 404 and "Diesen Buchungslink kennen wir nicht" in tampered.text
    assert form(citizen, booking_path[:-2] + "xx/absagen", {}).status_code == 404
    assert "Ja, Termin absagen" in citizen.get(booking_path + "/absagen").text
    cancelled = form(citizen, booking_path + "/absagen", {})
    assert cancelled.status_code == 200 and "Der Platz ist wieder frei" in cancelled.text
    slot = session.get(ConsultationSlot, slot_id)
    session.refresh(slot)
    assert slot is not None and slot.booked == 0
    assert slot_id in [free.slot_id for free in service.free_slots(session, series=town.series)]


def test_moving_by_link_keeps_the_reference_and_frees_the_old_place(
    session: Session, town: Town, citizen: TestClient
) -> None:
    first, second = first_slots(session, town, 2)
    book_by_phone(citizen, town, first)
    booking_path = form(citizen, "/sprechstunden/musterdorf/code", {"code": code_for(town)},
                        follow_redirects=False).headers["location"]  # fmt: skip
    choices = citizen.get(booking_path + "/verschieben").text
    assert f'value="{second}"' in choices and f'value="{first}"' not in choices
    moved = form(citizen, booking_path + "/verschieben", {"slot_id": second}, follow_redirects=False)
    assert moved.status_code == 303
    booking = session.exec(select(Booking)).one()
    session.refresh(booking)
    assert booking.slot_id == second and booking.status == "booked"
    old, new = session.get(ConsultationSlot, first), session.get(ConsultationSlot, second)
    assert old is not None and new is not None
    session.refresh(old)
    session.refresh(new)
    assert (old.booked, new.booked) == (0, 1)
    send_confirmations(session)
    assert str(last_to(town, PHONE, "twilio")["text"]).startswith("Verschoben: ")


def test_a_concern_becomes_a_case_for_the_host_team_and_the_api_shows_it(
    session: Session, town: Town, citizen: TestClient
) -> None:
    [slot_id] = first_slots(session, town, 1)
    book_by_phone(citizen, town, slot_id, concern="Mein Carport braucht eine Genehmigung.")
    form(citizen, "/sprechstunden/musterdorf/code", {"code": code_for(town)})
    booking = session.exec(select(Booking)).one()
    conversation = session.get(Conversation, booking.conversation_id)
    assert conversation is not None and conversation.team_id == town.team.id
    [first_message] = session.exec(select(Message).where(col(Message.conversation_id) == conversation.id)).all()
    assert first_message.body == "Mein Carport braucht eine Genehmigung." and first_message.direction == "inbound"
    sessions = town.api.get(f"/api/v1/consultations/series/{town.series.id}/sessions").json()
    [listed] = [b for held in sessions for slot in held["slots"] for b in slot["bookings"]]
    assert listed["conversation_id"] == conversation.id
    # The clerk preparing the case sees the booking beside it.
    clerk = tenancy.create_user(session, municipality_id=town.municipality.id or 0, email="sb@musterdorf.example",
                                name="Sachbearbeitung", role="staff")  # fmt: skip
    set_password(session, user=clerk, password=PASSWORD)
    session.commit()
    staff = TestClient(create_app())
    assert sign_in(staff, clerk.email).status_code == 303
    page = staff.get(f"/app/inbox/{conversation.id}")
    assert page.status_code == 200
    assert booking.reference in page.text and "Anliegen zu diesem Termin" in page.text


def test_the_pages_speak_english_and_refuse_a_series_without_questions(
    session: Session, town: Town, citizen: TestClient
) -> None:
    [slot_id] = first_slots(session, town, 1)
    english = citizen.get(f"/sprechstunden/musterdorf/termin/{slot_id}?lang=en")
    assert "<h1>Book an appointment</h1>" in english.text and "How do we reach you?" in english.text
    assert 'name="viewport"' in english.text and " style=" not in english.text
    town.series.questions_allowed = False
    session.add(town.series)
    session.commit()
    assert "Ihr Anliegen" not in citizen.get(f"/sprechstunden/musterdorf/termin/{slot_id}?lang=de").text
    refused = form(citizen, f"/sprechstunden/musterdorf/termin/{slot_id}",
                   {"name": "Erika", "way": "phone", "phone": PHONE, "concern": "Frage"})  # fmt: skip
    assert refused.status_code == 422 and "keine Fragen" in refused.text
    assert citizen.get("/sprechstunden/nirgendwo").status_code == 404
