"""Invitations in calendars, on SQLite and PostgreSQL: REQUEST by mail, the REPLY as the RSVP, changes, CANCEL.

Mail goes over SMTP to a real aiosmtpd server and SMS through the Twilio SDK to the sandbox; the
citizen's calendar answers through the hub's own mail intake (hub.inbox.mail.accept_mail, what
the SMTP listener and the IMAP poll call).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlmodel import Session, col, select

from channels.sandbox.client import SandboxClient
from channels.sandbox.server import SandboxServer
from hub import db
from hub.app import create_app
from hub.broadcasts import cli as broadcast_cli
from hub.broadcasts import invitations, service
from hub.broadcasts import pages as broadcast_pages
from hub.broadcasts.calendar_entry import calendar_url, event_uid
from hub.broadcasts.demo import DEMO_INVITATION_TITLE, DEMO_INVITEES, seed_invitation_demo
from hub.broadcasts.models import Broadcast
from hub.broadcasts.sending import complete_finished
from hub.cli import main
from hub.contacts.models import Contact, ContactIdentity
from hub.errors import Forbidden
from hub.inbox.mail import accept_mail
from hub.inbox.models import Conversation, InboundEvent, Message
from hub.inbox.outbound import send_message
from hub.inbox.pipeline import process_event
from hub.settings import Settings
from hub.subscribers import consent
from hub.subscribers.demo import seed_subscriber_demo
from hub.tenancy import service as tenancy
from hub.tenancy.models import ChannelAccount, Municipality, StaffUser
from tests.unit.db import make_town
from tests.unit.test_broadcasts import send_all, start
from tests.unit.test_email import SmtpSink, smtp_sink  # noqa: F401 (the fixture)
from tests.unit.web import clerk, staff_user
from workers.tasks import stop_everywhere

MAILBOX = "rathaus@musterdorf.example"
ERIKA = "erika@buerger.example"
PHONE = "+4915112340001"
STARTS = datetime(2031, 5, 6, 16, 0, tzinfo=UTC)  # 18:00 in Berlin
ENDS = STARTS + timedelta(hours=2)


@dataclass
class Town:
    municipality: Municipality
    mayor: StaffUser
    staff: StaffUser
    mail: ChannelAccount
    sms: ChannelAccount
    sandbox: SandboxClient
    sink: SmtpSink

    @property
    def id(self) -> int:
        assert self.municipality.id is not None
        return self.municipality.id


@pytest.fixture
def both(backend_settings: Settings) -> Iterator[Session]:
    with Session(db.get_engine(), expire_on_commit=False) as session:
        yield session


@pytest.fixture
def town(both: Session, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> Iterator[Town]:  # noqa: F811
    # No worker runs here: the mail intake's events are processed by the test, as a worker would.
    monkeypatch.setattr("hub.inbox.mail.enqueue_inbound", lambda ids: None)
    with SandboxServer() as sandbox:
        municipality = tenancy.create_municipality(both, slug="musterdorf", name="Gemeinde Musterdorf")
        assert municipality.id is not None
        mayor = tenancy.create_user(both, municipality_id=municipality.id, email="m@x.de", name="Maria", role="mayor")
        staff = tenancy.create_user(both, municipality_id=municipality.id, email="s@x.de", name="Sven", role="staff")
        seed_subscriber_demo(both, municipality.id)
        mail = tenancy.create_channel_account(
            both, municipality_id=municipality.id, kind="email", name="Rathaus",
            config={"address": MAILBOX, "smtp_host": "127.0.0.1", "smtp_port": smtp_sink.port},
        )  # fmt: skip
        sms = tenancy.create_channel_account(
            both, municipality_id=municipality.id, kind="twilio", name="SMS", secrets_={"auth_token": "t"},
            config={"account_sid": "AC" + "7" * 32, "phone_number": "+4930555000", "api_base_url": sandbox.url},
        )  # fmt: skip
        both.commit()
        client = SandboxClient(sandbox.url)
        client.register_account(kind=sms.kind, config=sms.config, secrets=sms.secrets, webhook_url=None)
        for kind, address in (("email", ERIKA), ("phone", PHONE)):
            subscriber(both, municipality.id, kind, address)
        yield Town(municipality, mayor, staff, mail, sms, client, smtp_sink)


def subscriber(session: Session, municipality_id: int, kind: str, address: str) -> None:
    contact = Contact(municipality_id=municipality_id, display_name=f"Person {address}")
    session.add(contact)
    session.flush()
    assert contact.id is not None
    session.add(ContactIdentity(municipality_id=municipality_id, contact_id=contact.id, kind=kind, address=address))
    consent.subscribe(session, municipality_id=municipality_id, contact_id=contact.id, channel_kind="twilio",
                      source="api", evidence={}, state="active")  # fmt: skip
    session.commit()


def invitation(session: Session, settings: Settings, town: Town) -> Broadcast:
    """The town's summer party, sent by mail and SMS."""
    draft = service.Draft(
        kind="invitation", title="Sommerfest am Rathaus", options=["Ja", "Nein"],
        texts={"de": {"body": "Wir laden Sie herzlich ein. Kommen Sie?"}},
        event={"where": "Rathausplatz 1"}, event_starts_at=STARTS, event_ends_at=ENDS,
    )  # fmt: skip
    broadcast = service.create(session, author=town.staff, draft=draft)
    assert broadcast.id is not None
    service.submit(session, actor=town.staff, broadcast_id=broadcast.id)
    service.approve(session, actor=town.mayor, broadcast_id=broadcast.id)
    broadcast.send_at = datetime.now(UTC) - timedelta(seconds=1)
    session.commit()
    start(session, broadcast)
    send_all(settings, broadcast.id)
    return broadcast


def calendar_part(message: EmailMessage) -> tuple[str, Calendar]:
    """The method parameter of the mail's text/calendar alternative, and the calendar it carries."""
    [part] = [part for part in message.walk() if part.get_content_type() == "text/calendar"]
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    return str(part.get_param("method")), Calendar.from_ical(data)


def mails_to(sink: SmtpSink, address: str) -> list[EmailMessage]:
    return [mail.message for mail in sink.mails if address in mail.rcpt_tos]


def reply_mail(uid: str, *, partstat: str, sequence: int = 0, calendar: str | None = None) -> bytes:
    """What a calendar app sends when the citizen presses "Zusagen": an iTIP REPLY (RFC 5546 §3.2.3) by iMIP."""
    body = calendar or (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\r\nMETHOD:REPLY\r\n"
        f"BEGIN:VEVENT\r\nDTSTART:20310506T160000Z\r\nDTSTAMP:20310401T080000Z\r\nORGANIZER;CN=Gemeinde Musterdorf:"
        f"mailto:{MAILBOX}\r\nUID:{uid}\r\nATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT={partstat};"
        f"CN=Erika:mailto:{ERIKA}\r\nSEQUENCE:{sequence}\r\nSUMMARY:Sommerfest am Rathaus\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    mail = EmailMessage(policy=policy.SMTP)
    mail["From"] = f"Erika <{ERIKA}>"
    mail["To"] = MAILBOX
    mail["Subject"] = "Angenommen: Sommerfest am Rathaus"
    mail["Message-ID"] = f"<reply-{partstat}-{sequence}-{len(body)}@buerger.example>"
    mail.set_content("Erika hat diese Einladung angenommen.")
    mail.add_alternative(body, subtype="calendar", params={"method": "REPLY"})
    return mail.as_bytes()


def arrives(session: Session, settings: Settings, town: Town, raw: bytes) -> str:
    """The mail through the hub's mail intake and the inbound pipeline; the pipeline's outcome."""
    intake = accept_mail(town.mail, raw, mail_from=ERIKA, recipient=MAILBOX)
    assert intake.kept and intake.new_events == 1
    event_id = session.exec(select(InboundEvent.id).order_by(col(InboundEvent.id).desc())).first()
    assert event_id is not None
    outcome = process_event(session, settings, event_id).outcome
    session.commit()
    return outcome


def answers(session: Session, town: Town, broadcast: Broadcast) -> dict[str, int]:
    assert broadcast.id is not None
    report = service.report(session, municipality_id=town.id, broadcast_id=broadcast.id)
    return {answer["option"]: answer["count"] for answer in report["answers"]}


def public_file(link: str) -> Calendar:
    response = TestClient(create_app()).get(urlsplit(link).path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    return Calendar.from_ical(response.content)


def sms_link(town: Town) -> str:
    [text] = [item["text"] for item in town.sandbox.outbox(kind="twilio", to=PHONE)][-1:]
    [link] = [word for word in text.split() if word.endswith(".ics")]
    return link


def test_a_mailed_invitation_is_a_request_whose_reply_counts_as_the_rsvp(
    both: Session, backend_settings: Settings, town: Town
) -> None:
    broadcast = invitation(both, backend_settings, town)
    uid = event_uid(broadcast, town.municipality)

    [mail] = mails_to(town.sink, ERIKA)
    method, calendar = calendar_part(mail)
    [event] = calendar.walk("VEVENT")
    assert (method, calendar["METHOD"]) == ("REQUEST", "REQUEST")
    assert (str(event["UID"]), event["SEQUENCE"], event["SUMMARY"]) == (uid, 0, "Sommerfest am Rathaus")
    assert (event.decoded("DTSTART"), event.decoded("DTEND")) == (STARTS, ENDS)
    assert event.decoded("DTSTART").utcoffset() == timedelta(0)
    assert (str(event["ORGANIZER"]), str(event["LOCATION"])) == (f"mailto:{MAILBOX}", "Rathausplatz 1")
    attendee = event["ATTENDEE"]
    assert str(attendee) == f"mailto:{ERIKA}"
    assert (attendee.params["RSVP"], attendee.params["PARTSTAT"]) == ("TRUE", "NEEDS-ACTION")
    assert [part.get_filename() for part in mail.iter_attachments()] == ["einladung.ics"]
    assert "06.05.2031 18:00–20:00" in mail.get_body(preferencelist=("plain",)).get_content()

    # The SMS carries a link to a calendar file that names nobody.
    published = public_file(sms_link(town))
    [shown] = published.walk("VEVENT")
    assert (published["METHOD"], str(shown["UID"]), shown.decoded("DTSTART")) == ("PUBLISH", uid, STARTS)
    assert "ATTENDEE" not in shown

    assert arrives(both, backend_settings, town, reply_mail(uid, partstat="ACCEPTED")).startswith("survey: ")
    assert answers(both, town, broadcast) == {"Ja": 1, "Nein": 0}
    assert arrives(both, backend_settings, town, reply_mail(uid, partstat="DECLINED")).startswith("survey: ")
    assert answers(both, town, broadcast) == {"Ja": 0, "Nein": 1}

    # Calendar data that cannot be read is no answer: the mail reaches the inbox as any other.
    broken = reply_mail(uid, partstat="ACCEPTED", calendar="BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\n")
    assert arrives(both, backend_settings, town, broken).startswith("stored")
    assert answers(both, town, broadcast) == {"Ja": 0, "Nein": 1}
    assert both.exec(select(Conversation)).first() is not None


def test_a_change_sends_a_higher_sequence_and_calling_it_off_sends_cancel(
    both: Session, backend_settings: Settings, town: Town
) -> None:
    broadcast = invitation(both, backend_settings, town)
    assert broadcast.id is not None
    uid = event_uid(broadcast, town.municipality)
    later = STARTS + timedelta(days=1)

    with pytest.raises(Forbidden):
        invitations.reschedule(both, settings=backend_settings, actor=town.staff, broadcast_id=broadcast.id,
                               starts_at=later, ends_at=None, where=None)  # fmt: skip
    told = invitations.reschedule(both, settings=backend_settings, actor=town.mayor, broadcast_id=broadcast.id,
                                  starts_at=later, ends_at=later + timedelta(hours=2), where="Stadthalle")  # fmt: skip
    both.commit()
    assert len(told.message_ids) == 2  # the mail and the SMS
    for message_id in told.message_ids:
        send_message(backend_settings, message_id, on_opted_out=stop_everywhere)
    changed = mails_to(town.sink, ERIKA)[-1]
    method, calendar = calendar_part(changed)
    [event] = calendar.walk("VEVENT")
    assert (method, str(event["UID"]), event["SEQUENCE"]) == ("REQUEST", uid, 1)
    assert (event.decoded("DTSTART"), str(event["LOCATION"])) == (later, "Stadthalle")
    assert changed["Subject"] == "Geändert: Sommerfest am Rathaus, 07.05.2031 18:00–20:00 Uhr"
    sms = town.sandbox.outbox(kind="twilio", to=PHONE)[-1]["text"]
    assert sms.startswith("Geändert: Sommerfest am Rathaus am 07.05.2031 18:00–20:00 Uhr, Stadthalle.")
    link = sms_link(town)
    assert public_file(link).walk("VEVENT")[0]["SEQUENCE"] == 1

    # An acceptance of the first time does not count for the new one.
    assert not arrives(both, backend_settings, town, reply_mail(uid, partstat="ACCEPTED")).startswith("survey: ")
    assert arrives(both, backend_settings, town, reply_mail(uid, partstat="ACCEPTED", sequence=1)).startswith("survey")

    # The invitation went out completely; calling it off still reaches everyone it reached.
    assert complete_finished(both) == [broadcast.id]
    both.commit()
    cancelled = invitations.cancel(both, settings=backend_settings, actor=town.mayor, broadcast_id=broadcast.id)
    both.commit()
    for message_id in cancelled.message_ids:
        send_message(backend_settings, message_id, on_opted_out=stop_everywhere)
    method, calendar = calendar_part(mails_to(town.sink, ERIKA)[-1])
    [event] = calendar.walk("VEVENT")
    assert (method, calendar["METHOD"], str(event["UID"])) == ("CANCEL", "CANCEL", uid)
    assert (event["SEQUENCE"], event["STATUS"]) == (2, "CANCELLED")
    assert town.sandbox.outbox(kind="twilio", to=PHONE)[-1]["text"].startswith("Abgesagt: Sommerfest am Rathaus")
    assert public_file(link).walk("VEVENT")[0]["STATUS"] == "CANCELLED"
    outbound = both.exec(select(Message).where(Message.direction == "outbound", Message.status == "sent")).all()
    assert len([message for message in outbound if message.subject and "Abgesagt" in message.subject]) == 1


def test_the_demo_invitation_links_its_calendar_file_in_the_sms(session: Session, settings: Settings) -> None:
    town = make_town(session)
    author, mayor = staff_user(session, town, "staff"), staff_user(session, town, "mayor")
    seed_invitation_demo(session, town.municipality, author=author, mayor=mayor)
    session.commit()
    [demo] = session.exec(select(Broadcast).where(Broadcast.title == DEMO_INVITATION_TITLE)).all()
    assert demo.id is not None and demo.status == "approved" and demo.event_starts_at is not None
    preview = service.preview_broadcast(session, municipality_id=demo.municipality_id, broadcast_id=demo.id)
    assert preview.recipients >= len(DEMO_INVITEES)
    [sms] = [channel.text for channel in preview.channels if channel.kind == "twilio" and channel.language == "de"]
    link = calendar_url(settings, demo)
    assert link is not None and f"Kalender: {link}" in sms
    [event] = public_file(link).walk("VEVENT")
    assert (event.decoded("DTSTART"), str(event["LOCATION"])) == (demo.event_starts_at, "Rathaus, Ratssaal")
    unknown = TestClient(create_app()).get("/einladung/unbekannt.ics")
    assert unknown.status_code == 404 and "Kalendereintrag" in unknown.text


def test_staff_compose_an_invitation_with_its_time_and_the_mayor_moves_it_from_its_page(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broadcast_pages, "enqueue_broadcast_start", lambda broadcast_id, urgent: None)
    town = make_town(session)
    staff, mayor = clerk(session, town, "staff"), clerk(session, town, "mayor")
    composed = {
        "kind": "invitation", "title": "Bürgerversammlung", "body_de": "Kommen Sie?", "options": "Ja\nNein",
        "event_starts_at": "2031-06-03T19:00", "event_ends_at": "2031-06-03T21:00", "event_where": "Ratssaal",
        "topic_match": "any", "district_match": "any", "action": "submit",
    }  # fmt: skip
    saved = staff.post("/app/broadcasts/new", composed, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    broadcast = session.exec(select(Broadcast).where(Broadcast.title == "Bürgerversammlung")).one()
    assert broadcast.event_starts_at == datetime(2031, 6, 3, 17, 0, tzinfo=UTC)  # Berlin is UTC+2 in summer
    assert broadcast.event["when"] == "03.06.2031 19:00–21:00"
    backwards = staff.post("/app/broadcasts/new", {**composed, "event_ends_at": "2031-06-03T18:00"})
    assert (
        backwards.status_code == 422 and "Das Ende der Veranstaltung muss nach ihrem Beginn liegen." in backwards.text
    )

    assert mayor.post(f"/app/broadcasts/{broadcast.id}/approve", follow_redirects=False).status_code == 303
    page = mayor.get(f"/app/broadcasts/{broadcast.id}").text
    session.refresh(broadcast)
    assert f"/einladung/{broadcast.calendar_token}.ics" in page
    assert "Zeit oder Ort ändern" in page and "Einladung absagen" in page
    assert "Zeit oder Ort ändern" not in staff.get(f"/app/broadcasts/{broadcast.id}").text
    assert (
        staff.post(f"/app/broadcasts/{broadcast.id}/reschedule", {"starts_at": "2031-06-04T19:00"}).status_code == 403
    )

    moved = mayor.post(f"/app/broadcasts/{broadcast.id}/reschedule", {"starts_at": "2031-06-04T19:00", "where": "Aula"},
                       follow_redirects=False)  # fmt: skip
    assert moved.status_code == 303
    session.refresh(broadcast)
    assert (broadcast.event_sequence, broadcast.event["where"]) == (1, "Aula")
    assert broadcast.event_starts_at == datetime(2031, 6, 4, 17, 0, tzinfo=UTC)


def test_the_command_line_drafts_an_invitation_with_its_time_moves_it_and_calls_it_off(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broadcast_cli, "enqueue_broadcast_start", lambda broadcast_id, urgent: None)
    monkeypatch.setattr(broadcast_cli, "enqueue_send", lambda message_id: None)
    town = make_town(session)
    mayor = staff_user(session, town, "mayor")
    acting = ["--as", mayor.email, "--municipality", town.municipality.slug]

    def run(*arguments: str) -> str:
        result = CliRunner().invoke(main, ["broadcast", *arguments, *acting])
        assert result.exit_code == 0, result.output
        return result.output

    created = run("create", "--kind", "invitation", "--title", "Ortsbeirat", "--text", "Kommen Sie?", "--option", "Ja",
                  "--option", "Nein", "--starts-at", "2031-09-01T16:00", "--where", "Bürgerhaus")  # fmt: skip
    broadcast = session.exec(select(Broadcast).where(Broadcast.title == "Ortsbeirat")).one()
    assert f"Entwurf {broadcast.id} angelegt" in created
    assert (broadcast.event_starts_at, broadcast.event["where"]) == (datetime(2031, 9, 1, 16, 0, tzinfo=UTC),
                                                                    "Bürgerhaus")  # fmt: skip
    run("submit", str(broadcast.id))
    run("approve", str(broadcast.id))
    assert run("reschedule", str(broadcast.id), "--starts-at", "2031-09-02T16:00").strip().endswith(": approved")
    assert run("cancel", str(broadcast.id)).strip().endswith(": cancelled")
    session.refresh(broadcast)
    assert (broadcast.event_sequence, broadcast.status) == (2, "cancelled")
    moved_again = CliRunner().invoke(main, ["broadcast", "reschedule", str(broadcast.id), "--starts-at",
                                            "2031-09-03T16:00", *acting])  # fmt: skip
    assert moved_again.exit_code != 0 and "Die Einladung ist abgesagt" in moved_again.output
