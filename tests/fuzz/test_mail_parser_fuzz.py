"""Generated mail for the email adapter and the mail intake: any headers, charsets, line endings and MIME trees.

Whatever arrives, the adapter either reads it into events that can be stored as they are
(JSON, UTF-8 text without the parser's surrogate escapes) or says it cannot with its declared
PayloadError; and the intake keeps every mail, as events or raw and flagged, so none is lost.
What the hub sends comes out as it went in: a subject survives folding exactly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import quopri
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from hypothesis import example, given
from hypothesis import strategies as st
from sqlmodel import Session, select

from channels.base import InboundMessage, OutboundMessage, PayloadError, StatusUpdate, WebhookRequest
from channels.email import EmailAdapter
from hub import db
from hub.inbox.events import event_key, message_from_json, status_from_json, to_json
from hub.inbox.mail import accept_mail
from hub.inbox.models import InboundEvent
from hub.tenancy.models import ChannelAccount
from tests.fuzz.conftest import FuzzHub
from tests.running_hub import free_port

pytestmark = pytest.mark.fuzz

HUB_ADDRESS = "rathaus@testdorf.example"

# Labels real mail carries, some wrong, some unknown to Python.
charsets = st.sampled_from(
    ["utf-8", "UTF-8", "iso-8859-1", "iso-8859-15", "windows-1252", "us-ascii", "koi8-r", "shift_jis", "gb2312",
     "utf-16", "utf-7", "x-unknown", "unknown-8bit", ""]
)  # fmt: skip
words = st.text(max_size=40) | st.sampled_from(["Straßenfest – Sondernutzung", "„Grüße“ 5 €", "Çağrı", "日本語", ""])


def encoded(text: str, charset: str, q: bool) -> str:
    """An RFC 2047 encoded word, or a broken one where the charset cannot hold the text."""
    try:
        data = text.encode(charset or "utf-8")
    except (LookupError, UnicodeError):
        data = text.encode("utf-8", "surrogateescape")
    payload = quopri.encodestring(data, header=True).decode("ascii") if q else base64.b64encode(data).decode()
    return f"=?{charset}?{'q' if q else 'b'}?{payload}?="


header_text = st.one_of(
    words,
    st.builds(encoded, words, charsets, st.booleans()),
    st.lists(st.builds(encoded, words, charsets, st.booleans()) | words, max_size=4).map(" ".join),
    st.sampled_from(["=?utf-8?q?unterminated", "=?utf-8?b?!!!?=", "=?=?", "?=", "=?x?y?z?=", '"', "<", "\\", ";"]),
)
addresses = st.one_of(
    st.sampled_from(["anna.weiss@example.de", "MAILER-DAEMON@mx.example.org", "owner-l@lists.example", "<>", "",
                     "Anna <anna@example.de>", '"Weiß, Anna" <anna@example.de>', "undisclosed-recipients:;",
                     "a@b@c", "@", "<a@example.de", "äöü@bürger.example"]),
    st.builds(lambda name, local: f"{name} <{local}@example.org>", header_text,
              st.from_regex(r"[a-z.]{1,10}", fullmatch=True)),
    st.text(max_size=30),
)  # fmt: skip
message_ids = st.one_of(
    st.from_regex(r"<[0-9a-z.]{1,20}@[a-z]{1,10}\.example>", fullmatch=True),
    st.sampled_from(["", "<>", "no-brackets@example.org", "<a@b> <c@d>", "<unterminated@example.org"]),
    st.text(max_size=30),
)
extra_headers = st.tuples(
    st.one_of(
        st.sampled_from(["Subject", "From", "Date", "In-Reply-To", "References", "Auto-Submitted", "Precedence",
                         "List-Id", "Return-Path", "Reply-To", "Content-Language", "Received",
                         "X-Original-Message-ID"]),
        st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True),
    ),
    header_text | addresses | message_ids
    | st.sampled_from(["auto-replied", "bulk", "no", "Tue, 18 Jun 2024 11:20:07 +0200",
                       "Mon, 99 Foo 2024 25:61:61 +9999"]),
)  # fmt: skip


@dataclass
class Part:
    """A MIME part as lines of header fields and a body, before line endings are chosen."""

    headers: list[str]
    body: bytes
    children: list[Part] = field(default_factory=list)
    boundary: str = ""
    closed: bool = True


def transfer_encoded(data: bytes, cte: str) -> bytes:
    if cte == "base64":
        return base64.encodebytes(data)
    if cte == "quoted-printable":
        return quopri.encodestring(data)
    return data


dsn_fields = st.lists(
    st.tuples(
        st.sampled_from(["Reporting-MTA", "Final-Recipient", "Original-Recipient", "Action", "Status",
                         "Diagnostic-Code", "X-Original-Message-ID", "Original-Message-ID", "Remote-MTA"]),
        st.sampled_from(["dns; mx.example.org", "rfc822; a@example.org", "failed", "delayed", "delivered", "relayed",
                         "5.1.1", "4.4.1", "2.0.0", "smtp; 550 5.1.1 User unknown", "<ours@testdorf.example>", ""])
        | st.text(max_size=20),
    ),
    max_size=5,
)  # fmt: skip


@st.composite
def leaf(draw: st.DrawFn) -> Part:
    content_type = draw(
        st.sampled_from(["text/plain", "text/html", "application/pdf", "image/png", "message/rfc822",
                         "message/delivery-status", "text/rfc822-headers", "application/octet-stream", "text/x-foo",
                         "garbage", ""])
    )  # fmt: skip
    charset = draw(charsets)
    cte = draw(st.sampled_from(["7bit", "8bit", "quoted-printable", "base64", "binary", "x-uuencode", ""]))
    headers = [f"Content-Type: {content_type}" + (f"; charset={charset}" if charset and draw(st.booleans()) else "")]
    if cte:
        headers.append(f"Content-Transfer-Encoding: {cte}")
    if draw(st.booleans()):
        name = draw(header_text)
        disposition = st.sampled_from([f'attachment; filename="{name}"', f"attachment; filename*=utf-8''{name}",
                                       "inline", name])  # fmt: skip
        headers.append(f"Content-Disposition: {draw(disposition)}")
    if content_type == "message/delivery-status":
        blocks = draw(st.lists(dsn_fields, max_size=3))
        data = b"\n\n".join(
            "\n".join(f"{k}: {v}" for k, v in block).encode("utf-8", "surrogateescape") for block in blocks
        )
    elif content_type in ("message/rfc822", "text/rfc822-headers"):
        data = f"Message-ID: {draw(message_ids)}\nSubject: {draw(header_text)}\n\n{draw(words)}".encode(
            "utf-8", "surrogateescape"
        )
    else:
        text = draw(words)
        try:
            data = text.encode(charset or "utf-8")
        except (LookupError, UnicodeError):
            data = draw(st.binary(max_size=60))
    return Part(headers=headers, body=transfer_encoded(data, cte) if draw(st.booleans()) else data)


def multipart(children: st.SearchStrategy[list[Part]]) -> st.SearchStrategy[Part]:
    @st.composite
    def build(draw: st.DrawFn) -> Part:
        subtype = draw(st.sampled_from(["mixed", "alternative", "related", "report; report-type=delivery-status",
                                        "report; report-type=disposition-notification", "signed"]))  # fmt: skip
        boundary = draw(st.from_regex(r"[A-Za-z0-9'()+_,./:=?-]{1,20}", fullmatch=True))
        quoted = f'"{boundary}"' if draw(st.booleans()) else boundary
        return Part(
            headers=[f"Content-Type: multipart/{subtype}; boundary={quoted}", "MIME-Version: 1.0"],
            body=draw(st.binary(max_size=20)),  # the preamble
            children=draw(children),
            boundary=boundary,
            closed=draw(st.booleans()),
        )

    return build()


mime_trees = st.recursive(leaf(), lambda inner: multipart(st.lists(inner, max_size=3)), max_leaves=6)


def lines_of(part: Part) -> list[bytes]:
    """The part as lines without their endings (a body may hold line breaks of its own)."""
    lines = [header.encode("utf-8", "surrogateescape") for header in part.headers] + [b""]
    lines.extend(part.body.split(b"\n") if part.body else [])
    for child in part.children:
        lines.append(b"--" + part.boundary.encode())
        lines.extend(lines_of(child))
    if part.children and part.closed:
        lines.append(b"--" + part.boundary.encode() + b"--")
    return lines


@st.composite
def raw_mail(draw: st.DrawFn) -> bytes:
    top = [
        f"From: {draw(addresses)}",
        f"To: {HUB_ADDRESS}",
        f"Message-ID: {draw(message_ids)}",
        f"Subject: {draw(header_text)}",
    ]
    top = draw(st.permutations(top))[: draw(st.integers(0, len(top)))]
    top += [f"{name}: {value}" for name, value in draw(st.lists(extra_headers, max_size=5))]
    tree = draw(mime_trees)
    tree.headers = top + tree.headers
    endings = draw(st.sampled_from([[b"\r\n"], [b"\n"], [b"\r"], [b"\r\n", b"\n"], [b"\r\n", b"\n", b"\r"]]))
    if draw(st.booleans()):
        # Raw 8-bit text in the headers, as many mailers send it.
        name = draw(st.sampled_from(["Subject", "From", "X-Raw", "Content-Type"]))
        value = draw(words).encode(draw(st.sampled_from(["latin-1", "utf-8"])), "replace")
        tree.headers.insert(0, f"{name}: " + value.decode("ascii", "surrogateescape"))
    out = b""
    for line in lines_of(tree):
        out += line + draw(st.sampled_from(endings))
    return out


envelope_senders = st.sampled_from([None, "", "<>", "anna.weiss@example.de", "x"])


def adapter() -> EmailAdapter:
    return EmailAdapter({"address": HUB_ADDRESS, "smtp_host": "127.0.0.1", "smtp_port": 1}, {})


def request(raw: bytes, mail_from: str | None) -> WebhookRequest:
    return WebhookRequest(
        url=f"mailto:{HUB_ADDRESS}", headers={}, body=raw, mail_from=mail_from, rcpt_tos=(HUB_ADDRESS,)
    )


def assert_storable(event: Any) -> None:
    """What the intake stores: JSON with UTF-8 text (PostgreSQL refuses the parser's surrogate escapes)."""
    data = to_json(event)
    json.dumps(data, ensure_ascii=False).encode("utf-8")
    if isinstance(event, InboundMessage):
        assert message_from_json(data) == event
        assert event.sender and event.provider_id
    elif isinstance(event, StatusUpdate):
        assert status_from_json(data) == event
    assert len(event_key(event)) > 0


@given(raw=raw_mail() | st.binary(max_size=300), mail_from=envelope_senders)
# Multiparts whose boundary never occurs: their payload is text, not parts.
@example(
    raw=b"From: a@example.org\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\nx",
    mail_from="",
)
@example(
    raw=b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=0\r\n\r\n--0\r\n"
    b"Content-Type: multipart/related; boundary=0\r\n\r\nx\r\n",
    mail_from=None,
)
# Values the stdlib's header parsers raise on; the envelope still names the sender.
@example(raw=b"From: <\r\nMessage-ID: <>\r\nIn-Reply-To: <\r\n\r\nText\r\n", mail_from="anna.weiss@example.de")
# A forwarded mail whose header cannot be refolded (raw 8-bit next to encoded words).
@example(
    raw=b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=0\r\n\r\n--0\r\n"
    b"Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n"
    b"Subject: =?utf-8?b??= 0\xc2\x80\xc2\x80 =?utf-8?q?=1F=C2=80=C2=80=F0=90=80=80=F0=90=80=80?=\r\n"
    b"\r\nText\r\n--0--\r\n",
    mail_from=None,
)
# An empty file is kept as an empty file.
@example(
    raw=b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n"
    b"Content-Disposition: attachment; filename=leer.txt\r\n\r\n--b--\r\n",
    mail_from=None,
)
def test_any_mail_is_read_into_storable_events_or_refused_with_the_payload_error(
    raw: bytes, mail_from: str | None
) -> None:
    try:
        events, refusal = adapter().parse(request(raw, mail_from)), None
    except PayloadError as error:
        events, refusal = [], str(error)
    # One mail is one event, or a refusal that says why (staff read it on the flagged event).
    assert len(events) == 1 or refusal
    for event in events:
        assert_storable(event)


def email_account() -> ChannelAccount:
    with Session(db.get_engine(), expire_on_commit=False) as session:
        return session.exec(select(ChannelAccount).where(ChannelAccount.kind == "email")).one()


def stored_keys(account: ChannelAccount) -> set[str]:
    with Session(db.get_engine()) as session:
        return set(session.exec(select(InboundEvent.provider_id).where(InboundEvent.channel_account_id == account.id)))


@given(raw=raw_mail() | st.binary(max_size=300), mail_from=envelope_senders)
def test_any_mail_at_the_intake_is_kept_as_events_or_raw_and_flagged(
    fuzz_hub: FuzzHub, raw: bytes, mail_from: str | None
) -> None:
    account = email_account()

    intake = accept_mail(account, raw, mail_from=mail_from, recipient=HUB_ADDRESS)

    assert intake.kept and intake.refused is None
    keys = stored_keys(account)
    if intake.flagged is not None:
        assert "unerwartet" not in intake.flagged, intake.flagged  # the parser itself failed
        assert f"unreadable:{hashlib.sha256(raw).hexdigest()}" in keys
    else:
        expected = {event_key(event)[:300] for event in adapter().parse(request(raw, mail_from))}
        assert expected <= keys


@dataclass
class Sink:
    mails: list[bytes] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's hook)
        self.mails.append(envelope.original_content)
        return "250 OK"


@pytest.fixture(scope="module")
def sink() -> Iterator[tuple[Sink, int]]:
    received, port = Sink(), free_port()
    controller = Controller(received, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield received, port
    finally:
        controller.stop()


@given(subject=st.text(st.characters(exclude_categories=["Cs", "Cc"]), max_size=150), name=st.text(max_size=40))
@example(subject="Ihre Anfrage A-2026-00001: Re: Genehmigung der Sondernutzung – Straßenfest", name="")
def test_a_subject_the_hub_sends_arrives_exactly(sink: tuple[Sink, int], subject: str, name: str) -> None:
    received, port = sink
    received.mails.clear()
    sender = EmailAdapter({"address": HUB_ADDRESS, "smtp_host": "127.0.0.1", "smtp_port": port}, {})

    sender.send(OutboundMessage(to="anna.weiss@example.de", text="Hallo", subject=subject, sender_name=name))

    [raw] = received.mails
    [event] = adapter().parse(request(raw, HUB_ADDRESS))
    assert isinstance(event, InboundMessage)
    assert event.subject == (" ".join(subject.split()) or "Ihre Anfrage")
