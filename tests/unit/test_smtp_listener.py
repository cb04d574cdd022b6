"""The hub's SMTP listener over a real socket, on the unit SQLite: what real mailers send is stored."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlmodel import Session, select

from hub.inbox.events import message_from_json
from hub.inbox.models import InboundEvent
from hub.settings import Settings
from hub.smtp_listener import start_listener
from tests.running_hub import free_port
from tests.unit.db import make_town

HUB_ADDRESS = "rathaus@testdorf.example"


@dataclass
class Listener:
    port: int
    queued: list[int] = field(default_factory=list)

    def send_data(self, data: bytes, *, sender: str = "anna.weiss@example.de") -> tuple[int, bytes]:
        """One mail whose DATA goes on the wire exactly as given, ended by CRLF.CRLF; the server's reply."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
            client.ehlo("mailer.example.de")
            client.mail(sender)
            client.rcpt(HUB_ADDRESS)
            code, _ = client.docmd("DATA")
            assert code == 354
            # smtplib.data() would turn bare LFs into CRLF; a Unix mailer talking SMTP itself does not.
            client.send(data + b"\r\n.\r\n")
            return client.getreply()


@pytest.fixture
def listener(settings: Settings, session: Session, monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    make_town(session)
    started = Listener(port=free_port())
    # No worker runs here: what counts is what the listener stored before answering.
    monkeypatch.setattr("hub.inbox.mail.enqueue_inbound", started.queued.extend)
    controller = start_listener(settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": started.port}))
    try:
        yield started
    finally:
        controller.stop()


def stored_messages(session: Session) -> list[InboundEvent]:
    session.expire_all()
    return list(session.exec(select(InboundEvent).where(InboundEvent.event_type == "message")))


def test_mail_with_bare_lf_line_endings_is_stored(listener: Listener, session: Session) -> None:
    paragraph = "Wir möchten am 12. Juli in der Schulstraße ein Straßenfest mit Musik und Ständen feiern.\n"
    raw = (
        "From: Anna Weiß <anna.weiss@example.de>\n"
        f"To: {HUB_ADDRESS}\n"
        "Subject: Antrag Straßenfest\n"
        "Message-ID: <bare-lf-1@example.de>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        "Guten Tag,\n\n" + paragraph * 30 + "\nMit freundlichen Grüßen\nAnna Weiß"
    ).encode()
    assert len(raw) > 2000 and b"\r" not in raw  # far over the 1000 octets of one SMTP line

    code, reply = listener.send_data(raw)

    assert code == 250, reply
    [event] = stored_messages(session)
    assert event.raw == raw + b"\r\n"  # the CRLF before the final dot ends the last line
    message = message_from_json(event.payload)
    assert message.provider_id == "bare-lf-1@example.de"
    assert message.subject == "Antrag Straßenfest"
    assert message.text.startswith("Guten Tag,\n\n" + paragraph)
    assert message.text.endswith("Mit freundlichen Grüßen\nAnna Weiß")
    assert listener.queued == [event.id]


def test_a_bare_lf_dot_line_does_not_end_the_mail(listener: Listener, session: Session) -> None:
    # RFC 5321 §4.1.1.4: only CRLF.CRLF ends the data; reading LF.LF as its end would let a
    # sender smuggle a second mail past the first one's checks.
    raw = (
        b"From: anna.weiss@example.de\nSubject: Punkt\nMessage-ID: <bare-lf-2@example.de>\n\nvorher\n.\n"
        b"MAIL FROM:<falsch@example.org>\nRCPT TO:<" + HUB_ADDRESS.encode() + b">\nDATA\nnachher"
    )

    code, reply = listener.send_data(raw)

    assert code == 250, reply
    [event] = stored_messages(session)
    assert message_from_json(event.payload).text.endswith("DATA\nnachher")
