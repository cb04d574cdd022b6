"""Tests for the email adapter: envelope check, parsing the fixture mails, sending over SMTP."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from channels.base import (
    ChannelAdapter,
    IgnoredEvent,
    InboundEvent,
    InboundMessage,
    OutboundMessage,
    PayloadError,
    PermanentError,
    StatusUpdate,
    TransientError,
    VerificationError,
    WebhookRequest,
)
from channels.email import EmailAdapter, html_to_text, strip_quoted_history
from channels.sandbox.client import SandboxClient
from channels.sandbox.server import SandboxServer

FIXTURES = Path(__file__).parent.parent / "fixtures" / "email"
# Replies as German and English mail clients send them, each beside the new text a clerk should see.
MAIL_CORPUS = sorted((Path(__file__).parent.parent / "fixtures" / "mail").glob("*.eml"))
HUB_ADDRESS = "rathaus@musterstadt.example"
CEST = timezone(timedelta(hours=2))


def make_adapter(port: int = 25, **config: Any) -> EmailAdapter:
    return EmailAdapter(
        {
            "address": HUB_ADDRESS,
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "display_name": "Bürgerbüro Musterstadt",
            **config,
        },
        {},
    )


def smtp_request(
    raw: bytes, mail_from: str | None = "citizen@example.org", rcpt_tos: tuple[str, ...] = ()
) -> WebhookRequest:
    return WebhookRequest(
        url="smtp://127.0.0.1:8025",
        headers={},
        body=raw,
        method="SMTP",
        mail_from=mail_from,
        rcpt_tos=rcpt_tos or (HUB_ADDRESS,),
    )


def parse_fixture(name: str, mail_from: str | None = "citizen@example.org") -> InboundMessage:
    adapter = make_adapter()
    request = smtp_request((FIXTURES / name).read_bytes(), mail_from=mail_from)
    adapter.verify(request)
    [event] = adapter.parse(request)
    assert isinstance(event, InboundMessage)
    return event


def parse_raw(raw: bytes, mail_from: str | None = "citizen@example.org") -> InboundMessage:
    [event] = make_adapter().parse(smtp_request(raw, mail_from=mail_from))
    assert isinstance(event, InboundMessage)
    return event


def test_adapter_satisfies_the_channel_protocol() -> None:
    adapter = make_adapter()

    assert isinstance(adapter, ChannelAdapter)
    assert (adapter.kind, adapter.max_body_chars, adapter.rate_per_second) == ("email", 100_000, 10)
    assert adapter.message_id_domain == "musterstadt.example"


# --- envelope check ------------------------------------------------------------------------


def test_mail_to_our_address_passes_case_insensitively() -> None:
    raw = (FIXTURES / "plain__utf8.eml").read_bytes()

    make_adapter().verify(smtp_request(raw, rcpt_tos=("other@x.example", "RATHAUS@Musterstadt.example")))


def test_mail_to_a_foreign_address_is_rejected() -> None:
    raw = (FIXTURES / "plain__utf8.eml").read_bytes()

    with pytest.raises(VerificationError, match=HUB_ADDRESS):
        make_adapter().verify(smtp_request(raw, rcpt_tos=("bauamt@musterstadt.example",)))


# --- unreadable input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"\x00\x01\x02\xff\xfe garbage", b"", b"just some words\r\nand more\r\n"],
    ids=["binary", "empty", "prose"],
)
def test_bytes_that_are_not_a_mail_raise_payload_error(raw: bytes) -> None:
    with pytest.raises(PayloadError, match="keine gültige E-Mail"):
        make_adapter().parse(smtp_request(raw))


def test_mail_without_from_and_with_null_envelope_sender_raises_payload_error() -> None:
    raw = b"Subject: hallo\r\n\r\nText\r\n"

    with pytest.raises(PayloadError, match="Absender"):
        make_adapter().parse(smtp_request(raw, mail_from="<>"))


def test_mail_without_from_falls_back_to_the_envelope_sender() -> None:
    event = parse_raw(b"Subject: hallo\r\n\r\nText\r\n", mail_from="Eva.Lang@Example.org")

    assert event.sender == "eva.lang@example.org"


# --- fixtures ------------------------------------------------------------------------------


def test_plain_utf8() -> None:
    assert parse_fixture("plain__utf8.eml") == InboundMessage(
        provider_id="a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d@example.org",
        sender="juergen.oeztuerk@example.org",
        sender_name="Jürgen Öztürk",
        recipient=HUB_ADDRESS,
        subject="Straßenlaterne in der Bahnhofstraße defekt",
        text=(
            "Guten Tag,\n\ndie Straßenlaterne vor der Bahnhofstraße 12 ist seit drei Tagen dunkel.\n"
            "Könnten Sie das bitte prüfen?\n\nViele Grüße\nJürgen Öztürk"
        ),
        sent_at=datetime(2024, 6, 12, 8, 42, 15, tzinfo=CEST),
    )


def test_plain_quoted_printable_latin1_with_attachment() -> None:
    event = parse_fixture("plain__quoted_printable_latin1_with_attachment.eml")

    assert (event.sender, event.sender_name) == ("anna.weiss@example.de", "Anna Weiß")
    assert event.subject == "Antrag Straßenfest Schulstraße"
    assert "Sondernutzung für das Straßenfest" in event.text
    assert event.text.endswith("Mit freundlichen Grüßen\nAnna Weiß")
    [pdf] = event.attachments
    assert (pdf.filename, pdf.content_type) == ("Antrag_Straßenfest.pdf", "application/pdf")
    assert pdf.data is not None
    assert pdf.data.startswith(b"%PDF-1.4\n") and pdf.data.endswith(b"%%EOF\n")
    assert pdf.size == len(pdf.data) == 142
    assert event.automated is False


def test_html_only_newsletter_style_becomes_plain_text_and_is_automated() -> None:
    event = parse_fixture("html_only__newsletter_style.eml")

    assert event.text == (
        "Neuigkeiten aus Ihren Stadtwerken\n\n"
        "Liebe Leserinnen & Leser,\n"
        "ab 1. Juli gilt der neue Tarif: nur 29 € im Monat.\n\n"
        "Was ändert sich?\n\n"
        "- Grundgebühr sinkt\n"
        '- Ökostrom ist "inklusive"\n\n'
        "Newsletter abbestellen: hier klicken"
    )
    assert "<" not in event.text and "trackOpen" not in event.text
    assert event.automated is True


def test_reply_with_german_quote_is_stripped_and_threaded() -> None:
    event = parse_fixture("reply__with_german_quote.eml")

    assert event.text == (
        "Vielen Dank für die schnelle Antwort!\n"
        "Die Laterne steht direkt vor Hausnummer 12, gegenüber der Bäckerei.\n\n"
        "Viele Grüße\nJürgen Öztürk"
    )
    assert event.in_reply_to == (
        "171817650012.4242.9876543210@musterstadt.example",
        "a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d@example.org",
    )
    assert event.subject == "Re: Straßenlaterne in der Bahnhofstraße defekt"
    assert event.automated is False


def test_auto_reply_out_of_office_is_automated() -> None:
    event = parse_fixture("auto_reply__out_of_office.eml")

    assert event.automated is True
    assert event.sender == "m.schmidt@example.net"
    assert event.in_reply_to == ("171860940077.1001.5555@musterstadt.example",)
    assert event.text.startswith("Vielen Dank für Ihre Nachricht.")


def parse_one(raw: bytes, mail_from: str | None = "<>") -> InboundEvent:
    [event] = make_adapter().parse(smtp_request(raw, mail_from=mail_from))
    return event


@pytest.mark.parametrize(
    ("fixture", "bounced", "code", "diagnostic"),
    [
        (
            "bounce__dsn.eml",  # Postfix, the original's headers only
            "171870240511.2002.7777@musterstadt.example",
            "5.1.1",
            "Unzustellbar an nicht.vorhanden@example.com: 550 5.1.1 <nicht.vorhanden@example.com>: "
            "Recipient address rejected: User unknown",
        ),
        (
            "bounce__exchange_ndr_with_original.eml",  # Exchange Online, the whole original returned
            "171879134102.3003.8888@musterstadt.example",
            "5.1.10",
            "Unzustellbar an s.keller@example.net: 550 5.1.10 RESOLVER.ADR.RecipientNotFound; "
            "Recipient not found by SMTP address lookup",
        ),
        (
            "bounce__gmail_x_original_message_id.eml",  # Gmail names the original in the report
            "171887124511.4004.9999@musterstadt.example",
            "5.1.1",
            "Unzustellbar an weg.verzogen@gmail.com: 550-5.1.1 The email account that you tried to reach does not "
            "exist.",
        ),
    ],
    ids=["postfix", "exchange", "gmail"],
)
def test_a_bounce_is_the_failed_status_of_the_mail_it_returns(
    fixture: str, bounced: str, code: str, diagnostic: str
) -> None:
    raw = (FIXTURES / fixture).read_bytes()

    event = parse_one(raw)

    assert isinstance(event, StatusUpdate)
    assert (event.provider_id, event.status, event.error_code) == (bounced, "failed", code)
    assert event.error_message is not None and event.error_message.startswith(diagnostic)
    # One event per report: a re-delivered bounce is a no-op, another bounce of the same mail is not.
    assert event.event_id == message_from_bytes(raw, policy=policy.default)["Message-ID"].strip().strip("<>")


def test_a_bounce_names_the_provider_id_that_send_returned(smtp_sink: SmtpSink) -> None:
    receipt = make_adapter(smtp_sink.port).send(OutboundMessage(to="weg@example.net", text="Hallo", subject="Antwort"))
    [sent] = smtp_sink.mails
    # What a relay returns: the report and the headers of the mail it could not deliver.
    original_headers = sent.raw.split(b"\r\n\r\n")[0]
    template = (FIXTURES / "bounce__dsn.eml").read_bytes()
    start = template.index(b"From: =?utf-8?q?B=C3=BCrgerb=C3=BCro?=")
    end = template.index(b"\r\n\r\n", start)
    raw = template[:start] + original_headers + template[end:]

    event = parse_one(raw)

    assert isinstance(event, StatusUpdate)
    assert event.provider_id == receipt.provider_id


def test_a_delay_warning_is_kept_as_ignored_not_as_a_failure() -> None:
    event = parse_one((FIXTURES / "bounce__delayed_warning.eml").read_bytes())

    assert isinstance(event, IgnoredEvent)
    assert event.provider_id == "20240621114011.4W5C8d4rYza@mx.musterstadt.example"
    assert "4.4.1" in event.reason and "171895560011.5005.1111@musterstadt.example" in event.reason


def dsn(status_fields: str, *, headers: str = "", returned: str = "") -> bytes:
    """A minimal RFC 3464 report: no From (some relays leave it out), the given fields and original."""
    original = f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\n{returned}\r\n" if returned else ""
    return (
        f"Message-ID: <dsn-1@relay.example>\r\n{headers}"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nNicht zustellbar.\r\n"
        f"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.example\r\n\r\n"
        f"{status_fields}\r\n{original}--b--\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            dsn("Final-Recipient: rfc822; a@example.org\r\nStatus: 5.2.2",
                headers="In-Reply-To: <ours-1@m.example>\r\n"),
            StatusUpdate("ours-1@m.example", "failed", "5.2.2", "Unzustellbar an a@example.org: 5.2.2",
                         "dsn-1@relay.example"),
        ),
        (
            dsn("Final-Recipient: rfc822; a@example.org\r\nAction: failed\r\nDiagnostic-Code: smtp; 552 Mailbox full",
                returned="Message-ID: <ours-2@m.example>"),
            StatusUpdate("ours-2@m.example", "failed", "552", "Unzustellbar an a@example.org: 552 Mailbox full",
                         "dsn-1@relay.example"),
        ),
        (
            dsn("Final-Recipient: rfc822; a@example.org\r\nAction: delivered\r\nStatus: 2.0.0",
                returned="Message-ID: <ours-3@m.example>"),
            StatusUpdate("ours-3@m.example", "delivered", event_id="dsn-1@relay.example"),
        ),
        (
            dsn("Final-Recipient: rfc822; a@example.org\r\nAction: failed\r\nStatus: 5.1.1"),
            IgnoredEvent("dsn-1@relay.example",
                         "Unzustellbarkeitsbericht ohne Message-ID der zurückgekommenen Nachricht"),
        ),
        (
            dsn("", returned="Message-ID: <ours-4@m.example>"),
            IgnoredEvent("dsn-1@relay.example", "Zustellbericht zu ours-4@m.example ohne Angaben zum Empfänger"),
        ),
    ],
    ids=["status-class-and-in-reply-to", "code-from-diagnostic", "positive-report", "no-original", "no-recipient"],
)  # fmt: skip
def test_delivery_reports_of_every_shape(raw: bytes, expected: InboundEvent) -> None:
    assert parse_one(raw, mail_from="") == expected


def test_a_report_of_another_type_stays_automated_mail() -> None:
    raw = dsn("Final-Recipient: rfc822; a@example.org\r\nAction: failed").replace(
        b"report-type=delivery-status", b"report-type=disposition-notification"
    )

    event = parse_one(b"From: mailer-daemon@relay.example\r\n" + raw)

    assert isinstance(event, InboundMessage) and event.automated


def test_no_message_id_gets_a_stable_hash_id() -> None:
    raw = (FIXTURES / "no_message_id__plain.eml").read_bytes()

    first = parse_fixture("no_message_id__plain.eml")
    again = parse_fixture("no_message_id__plain.eml")

    assert first.provider_id == again.provider_id == f"sha256:{hashlib.sha256(raw).hexdigest()}"
    assert (first.sender, first.sender_name) == ("hans.meier@example.com", None)
    assert first.text.startswith("Hallo,\n\nwann ist der naechste Sperrmuell-Termin")


def test_non_utf8_mislabelled_cp1252_keeps_quotes_and_euro() -> None:
    event = parse_fixture("non_utf8__mislabelled_cp1252.eml")

    assert "kostet das „Stadtfest am See“ wirklich 5 € Eintritt?" in event.text
    assert "schade – letztes" in event.text
    assert event.text.endswith("Gruß\nKlaus Becker")


# --- decoding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("text/plain", "„Grüße“ 5 €".encode("cp1252"), "„Grüße“ 5 €"),
        ("text/plain", "Grüße".encode(), "Grüße"),
        ("text/plain; charset=iso-8859-1", "Grüße".encode(), "Grüße"),
        ("text/plain; charset=utf-8", "Grüße €".encode("cp1252"), "Grüße €"),
        ("text/plain; charset=x-unknown-8bit", "Grüße".encode("cp1252"), "Grüße"),
        ("text/plain; charset=utf-8", b"Gr\x81\x8d\xff", "Gr\ufffd\ufffd\ufffd"),
    ],
    ids=[
        "unlabelled-cp1252",
        "unlabelled-utf8",
        "latin1-label-on-utf8",
        "utf8-label-on-cp1252",
        "unknown-label",
        "undecodable",
    ],
)
def test_body_decoding_falls_back_without_raising(content_type: str, body: bytes, expected: str) -> None:
    raw = (
        b"From: a@example.org\r\nContent-Type: "
        + content_type.encode()
        + b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + body
    )

    assert parse_raw(raw).text == expected


def test_forwarded_mail_is_one_attachment_with_its_raw_bytes() -> None:
    raw = (
        b"From: a@example.org\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nSiehe unten.\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n"
        b"From: b@example.org\r\nSubject: alt\r\n\r\nAlter Text\r\n"
        b"--b--\r\n"
    )

    event = parse_raw(raw)

    assert event.text == "Siehe unten."
    [forwarded] = event.attachments
    assert forwarded.content_type == "message/rfc822"
    assert forwarded.data is not None and b"Subject: alt" in forwarded.data
    assert forwarded.size == len(forwarded.data)


def test_html_to_text_drops_scripts_styles_and_keeps_breaks() -> None:
    html = (
        "<html><head><style>p{color:red}</style></head><body>"
        "<script>alert('x')</script><p>Zeile&nbsp;1<br>Zeile 2</p>"
        "<div>Preis: 5&euro; &lt;netto&gt;</div></body></html>"
    )

    assert html_to_text(html) == "Zeile 1\nZeile 2\n\nPreis: 5€ <netto>"


# --- quote stripping -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Danke!\n\n-----Ursprüngliche Nachricht-----\nVon: Rathaus\nBetreff: x\n\nalt",
            "Danke!",
        ),
        (
            "Danke!\n\n________________________________\nVon: Rathaus <r@m.example>\n"
            "Gesendet: Montag, 17. Juni 2024 09:00\nAn: Eva\n\nalt",
            "Danke!",
        ),
        ("Thanks!\n\nOn Wed, Jun 12, 2024 at 9:15 AM Rathaus wrote:\n> old", "Thanks!"),
        ("Danke!\n-----Original Message-----\nFrom: x", "Danke!"),
        ("Danke!\n\n-- \nEva Lang\nTel. 0123", "Danke!"),
        ("Danke!\n> zitiert\n>\n> noch mehr\n", "Danke!"),
        (
            "Am Montag schrieb ich Ihnen bereits:\ndie Laterne ist kaputt.",
            "Am Montag schrieb ich Ihnen bereits:\ndie Laterne ist kaputt.",
        ),
        ("> nur Zitat\n> sonst nichts", "> nur Zitat\n> sonst nichts"),
    ],
    ids=[
        "outlook-de",
        "outlook-rule",
        "gmail-en",
        "original-message",
        "signature",
        "trailing-quote",
        "citizen-wording-kept",
        "all-quote-kept",
    ],
)
def test_strip_quoted_history(text: str, expected: str) -> None:
    assert strip_quoted_history(text) == expected


@pytest.mark.parametrize("path", MAIL_CORPUS, ids=[path.stem for path in MAIL_CORPUS])
def test_a_reply_from_each_client_arrives_as_the_citizens_new_text(path: Path) -> None:
    """Quoted history, attribution, client footer and signature are cut off; the citizen's words are all kept."""
    expected = path.with_suffix(".txt").read_text(encoding="utf-8").rstrip("\n")

    assert parse_raw(path.read_bytes()).text == expected


def test_the_mail_corpus_is_there() -> None:
    assert len(MAIL_CORPUS) >= 30
    assert all(path.with_suffix(".txt").exists() for path in MAIL_CORPUS)


# --- loop signals --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "mail_from", "automated"),
    [
        ("From: a@example.org\r\n", "a@example.org", False),
        ("From: a@example.org\r\nAuto-Submitted: no\r\n", "a@example.org", False),
        ("From: a@example.org\r\nAuto-Submitted: auto-generated\r\n", "a@example.org", True),
        ("From: a@example.org\r\nPrecedence: junk\r\n", "a@example.org", True),
        ("From: a@example.org\r\nPrecedence: list\r\n", "a@example.org", True),
        ("From: a@example.org\r\nX-Autoreply: yes\r\n", "a@example.org", True),
        ("From: a@example.org\r\nX-Autorespond: yes\r\n", "a@example.org", True),
        ("From: a@example.org\r\nList-Id: <l.example.org>\r\n", "a@example.org", True),
        ("From: a@example.org\r\nList-Unsubscribe: <mailto:u@x>\r\n", "a@example.org", True),
        ("From: a@example.org\r\n", "", True),
        ("From: a@example.org\r\n", "<>", True),
        ("From: a@example.org\r\nReturn-Path: <>\r\n", None, True),
        ("From: Postmaster@example.org\r\n", "x@example.org", True),
        ("From: owner-rathaus-l@lists.example.org\r\n", "x@example.org", True),
        ("From: rathaus-l-request@lists.example.org\r\n", "x@example.org", True),
    ],
)
def test_automated_signals(headers: str, mail_from: str | None, automated: bool) -> None:
    raw = (headers + "Subject: t\r\n\r\nText\r\n").encode()

    assert parse_raw(raw, mail_from=mail_from).automated is automated


# --- sending -------------------------------------------------------------------------------


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SmtpSink:
    """What a real aiosmtpd server received; `rcpt_replies` makes it refuse chosen recipients."""

    port: int = 0
    mails: list[ReceivedMail] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.mails.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink(port=free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def test_send_builds_a_threaded_quoted_printable_mail(smtp_sink: SmtpSink) -> None:
    receipt = make_adapter(smtp_sink.port).send(
        OutboundMessage(
            to="juergen.oeztuerk@example.org",
            text="Sehr geehrter Herr Öztürk,\n\ndie Laterne wird morgen repariert.\n\nGrüße",
            subject="Re: Straßenlaterne",
            reply_to_ref="CAF7k2xQ9Zq1@mail.gmail.com",
            references=("a1b2c3d4@example.org",),
        )
    )

    [mail] = smtp_sink.mails
    assert mail.mail_from == HUB_ADDRESS
    assert mail.rcpt_tos == ["juergen.oeztuerk@example.org"]
    message = mail.message
    assert message["Message-ID"] == f"<{receipt.provider_id}>"
    assert receipt.provider_id.endswith("@musterstadt.example")
    assert message["In-Reply-To"] == "<CAF7k2xQ9Zq1@mail.gmail.com>"
    assert message["References"] == "<a1b2c3d4@example.org> <CAF7k2xQ9Zq1@mail.gmail.com>"
    assert message["From"].addresses[0].display_name == "Bürgerbüro Musterstadt"
    assert message["From"].addresses[0].addr_spec == HUB_ADDRESS
    assert message["Subject"] == "Re: Straßenlaterne"
    assert message["Date"] is not None
    assert "Auto-Submitted" not in message
    assert message["Content-Transfer-Encoding"] == "quoted-printable"
    assert b"=C3=96zt=C3=BCrk" in mail.raw
    # On the wire lines end in CRLF.
    assert message.get_content().replace("\r\n", "\n") == (
        "Sehr geehrter Herr Öztürk,\n\ndie Laterne wird morgen repariert.\n\nGrüße\n"
    )


def test_send_uses_a_given_message_id_and_the_default_subject(smtp_sink: SmtpSink) -> None:
    receipt = make_adapter(smtp_sink.port).send(
        OutboundMessage(to="eva@example.org", text="Hallo", message_id="<case-42.1@musterstadt.example>")
    )

    [mail] = smtp_sink.mails
    assert receipt.provider_id == "case-42.1@musterstadt.example"
    assert mail.message["Message-ID"] == "<case-42.1@musterstadt.example>"
    assert mail.message["Subject"] == "Ihre Anfrage"
    assert "In-Reply-To" not in mail.message and "References" not in mail.message


@pytest.mark.parametrize(
    "subject",
    [
        "Re: Sondernutzung – Straßenfest",
        # An acknowledgement's subject, folded right where the dash's encoded word ends.
        "Ihre Anfrage A-2026-00001: Re: Genehmigung der Sondernutzung – Straßenfest",
        "Re: Sondernutzung – Straßenfest – Genehmigung für die Schulstraße und die Bahnhofstraße [A-2026-00001]",
    ],
    ids=["short", "folded-at-the-dash", "folded-twice"],
)
def test_subject_with_encoded_words_arrives_in_the_sandbox_exactly(subject: str) -> None:
    with SandboxServer() as sandbox, SandboxClient(sandbox.url) as client:
        make_adapter(sandbox.smtp_port).send(OutboundMessage(to="anna.weiss@example.de", text="Hallo", subject=subject))
        [mail] = client.outbox(kind="email")

    assert mail["subject"] == subject


def test_a_long_subject_is_folded_into_short_lines_of_short_encoded_words(smtp_sink: SmtpSink) -> None:
    subject = "Re: Sondernutzung – Straßenfest – Genehmigung für die Schulstraße und die Bahnhofstraße am Wochenende"
    make_adapter(smtp_sink.port).send(OutboundMessage(to="eva@example.org", text="Hallo", subject=subject))

    [mail] = smtp_sink.mails
    head = mail.raw.split(b"\r\n\r\n")[0].decode("ascii")
    assert all(len(line) <= 78 for line in head.split("\r\n"))
    assert all(len(word) <= 75 for word in head.split() if word.startswith("=?"))
    assert mail.message["Subject"] == subject


@pytest.mark.parametrize(
    "header",
    [
        b"Subject: Re: Sondernutzung =?UTF-8?B?4oCTIFN0cmHDn2VuZmVzdA==?=",
        b"Subject: =?utf-8?q?Re=3A_Sondernutzung_=E2=80=93_?=\r\n =?utf-8?q?Stra=C3=9Fenfest?=",
        b"Subject: =?iso-8859-1?q?Re=3A_Sondernutzung_=96_Stra=DFenfest?=",
        b"Subject: Re: Sondernutzung =?windows-1252?q?=96_Stra=DFenfest?=",
    ],
    ids=["thunderbird", "folded-between-words", "outlook-latin1-label", "cp1252"],
)
def test_inbound_subject_with_encoded_words_keeps_its_spaces_and_dash(header: bytes) -> None:
    raw = b"From: anna.weiss@example.de\r\n" + header + b"\r\n\r\nText\r\n"

    assert parse_raw(raw).subject == "Re: Sondernutzung – Straßenfest"


def test_line_breaks_in_subject_and_name_are_flattened(smtp_sink: SmtpSink) -> None:
    make_adapter(smtp_sink.port, display_name="").send(
        OutboundMessage(to="eva@example.org", text="Hallo", subject="Re: Zeile 1\r\n Zeile 2", sender_name="Eva\nLang")
    )

    [mail] = smtp_sink.mails
    assert mail.message["Subject"] == "Re: Zeile 1 Zeile 2"
    assert mail.message["From"].addresses[0].display_name == "Eva Lang"


def test_automated_send_is_marked_and_uses_a_null_envelope_sender(smtp_sink: SmtpSink) -> None:
    make_adapter(smtp_sink.port).send(OutboundMessage(to="eva@example.org", text="Eingangsbestätigung", automated=True))

    [mail] = smtp_sink.mails
    # aiosmtpd records MAIL FROM:<> as the literal "<>".
    assert mail.mail_from == "<>"
    assert mail.message["Auto-Submitted"] == "auto-replied"
    assert mail.message["X-Auto-Response-Suppress"] == "OOF, AutoReply"


def test_refused_recipient_is_permanent(smtp_sink: SmtpSink) -> None:
    smtp_sink.rcpt_replies["weg@example.org"] = "550 5.1.1 User unknown"

    with pytest.raises(PermanentError, match="550") as caught:
        make_adapter(smtp_sink.port).send(OutboundMessage(to="weg@example.org", text="Hallo"))

    assert caught.value.code == "550"
    assert smtp_sink.mails == []


def test_greylisted_recipient_is_transient(smtp_sink: SmtpSink) -> None:
    smtp_sink.rcpt_replies["spaeter@example.org"] = "451 4.7.1 Greylisted, try again later"

    with pytest.raises(TransientError) as caught:
        make_adapter(smtp_sink.port).send(OutboundMessage(to="spaeter@example.org", text="Hallo"))

    assert caught.value.code == "451"


def test_nothing_listening_is_transient() -> None:
    with pytest.raises(TransientError, match="nicht erreichbar"):
        make_adapter(free_port()).send(OutboundMessage(to="eva@example.org", text="Hallo"))


@pytest.mark.parametrize(
    "to", ["ohne-at-zeichen", "a@b", "zwei@@example.org", "a b@example.org", "x@example.org\r\nBcc: y@z.org"]
)
def test_invalid_address_is_permanent_before_connecting(smtp_sink: SmtpSink, to: str) -> None:
    with pytest.raises(PermanentError, match="ungültige E-Mail-Adresse"):
        make_adapter(smtp_sink.port).send(OutboundMessage(to=to, text="Hallo"))

    assert smtp_sink.mails == []


def test_internationalised_domain_is_sent_as_punycode(smtp_sink: SmtpSink) -> None:
    make_adapter(smtp_sink.port).send(OutboundMessage(to="info@bürgerbüro.example", text="Hallo"))

    [mail] = smtp_sink.mails
    assert mail.rcpt_tos == ["info@xn--brgerbro-65af.example"]


def test_sent_at_is_timezone_aware_for_unknown_zone() -> None:
    event = parse_raw(b"From: a@example.org\r\nDate: Wed, 12 Jun 2024 08:00:00 -0000\r\n\r\nx\r\n")

    assert event.sent_at == datetime(2024, 6, 12, 8, 0, tzinfo=UTC)


def test_raw_utf8_and_latin1_headers_are_decoded_not_left_as_surrogates() -> None:
    raw = (
        (
            "From: Grete Möller <grete@example.org>\r\nTo: rathaus@musterstadt.example\r\n"
            "Subject: Parkausweis für Anwohner\r\nMessage-ID: <raw-8bit@example.org>\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nHallo\r\n"
        ).encode()
        + b"X-Latin: "
        + "Straße".encode("latin-1")
        + b"\r\n"
    )
    event = parse_raw(raw)
    assert event.sender_name == "Grete Möller"
    assert event.subject == "Parkausweis für Anwohner"
    latin = raw.replace("Parkausweis für Anwohner".encode(), "Parkausweis für Anwohner".encode("latin-1"))
    # Raw Latin-1 bytes are already replaced by the standard parser; what is left must be storable text.
    subject = parse_raw(latin).subject
    assert subject is not None and subject.startswith("Parkausweis f") and subject.endswith("r Anwohner")
    subject.encode("utf-8")


def test_a_broadcast_mail_carries_html_and_list_unsubscribe(smtp_sink: SmtpSink) -> None:
    make_adapter(smtp_sink.port).send(
        OutboundMessage(
            to="buerger@example.org",
            text="Die Straße ist gesperrt.",
            subject="Sperrung",
            html="<p>Die Straße ist <b>gesperrt</b>.</p>",
            headers=(
                ("List-Unsubscribe", "<https://hub.example/u/abc>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                ("Auto-Submitted", "auto-generated"),
            ),
        )
    )
    [received] = smtp_sink.mails
    mail = received.message
    assert received.mail_from == HUB_ADDRESS  # bounces of a broadcast must come back
    assert mail["List-Unsubscribe"] == "<https://hub.example/u/abc>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["Auto-Submitted"] == "auto-generated"
    html, plain = mail.get_body(preferencelist=("html",)), mail.get_body(preferencelist=("plain",))
    assert html is not None and plain is not None
    assert html.get_content().strip() == "<p>Die Straße ist <b>gesperrt</b>.</p>"
    assert plain.get_content().strip() == "Die Straße ist gesperrt."
