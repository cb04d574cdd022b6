"""Email adapter: mail from the hub's SMTP listener in, SMTP out, with threading and loop guards."""

from __future__ import annotations

import hashlib
import re
import smtplib
import ssl
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.errors import HeaderParseError
from email.header import Header
from email.headerregistry import Address, UnstructuredHeader
from email.message import EmailMessage, Message, MIMEPart
from email.parser import BytesHeaderParser
from email.policy import EmailPolicy
from email.utils import formatdate, make_msgid
from typing import Any, ClassVar

import inscriptis
from icalendar import Calendar
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig
from inscriptis.model.html_document_state import HtmlDocumentState
from inscriptis.model.tag import CustomHtmlTagHandlerMapping
from pydantic import SecretStr

from channels.base import (
    N_,
    Attachment,
    CalendarReply,
    ChannelAdapter,
    ChannelSettings,
    Identity,
    IgnoredEvent,
    InboundEvent,
    InboundMessage,
    OutboundMessage,
    PayloadError,
    PermanentError,
    Processor,
    Receipt,
    StatusUpdate,
    TransientError,
    VerificationError,
    Webhook,
    WebhookRequest,
    setting,
)
from channels.dkim import signature_field
from channels.registry import register

DEFAULT_SUBJECT = "Ihre Anfrage"
SMTP_TIMEOUT_SECONDS = 30.0

# Labels WHATWG decodes as windows-1252: mail labelled Latin-1 or ASCII is in practice often
# cp1252 („“ €), and Python's latin-1 codec would silently turn those bytes into C1 controls.
_WINDOWS_1252_LABELS = frozenset(
    {
        "ansi_x3.4-1968",
        "ascii",
        "cp1252",
        "cp819",
        "csisolatin1",
        "ibm819",
        "iso-8859-1",
        "iso-ir-100",
        "iso8859-1",
        "iso88591",
        "iso_8859-1",
        "iso_8859-1:1987",
        "l1",
        "latin1",
        "us-ascii",
        "windows-1252",
        "x-cp1252",
    }
)

# RFC 3834 §2 and common robot headers: any of these means "do not answer automatically".
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_AUTORESPONDER_HEADERS = ("X-Autoreply", "X-Autorespond")
_MAILING_LIST_HEADERS = ("List-Id", "List-Unsubscribe")
_ROBOT_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster"})

_MESSAGE_ID_TOKEN = re.compile(r"<([^<>\s]+)>")

# Lines that introduce quoted history in German and English mail clients. Attributions
# ("Am 12.06.2024 um 09:15 schrieb …:", Yahoo's "Am … hat … Folgendes geschrieben:") always carry
# a date, which tells them apart from a citizen's own "Am Montag schrieb ich Ihnen:". Gmail on
# Android wraps "schrieb:" alone onto the next line.
_QUOTE_ATTRIBUTION = re.compile(
    r"^\s*(?:Am\s.+\s(?:schrieb(?:\s.*)?|hat\s.+\sFolgendes geschrieben):|On\s.+\swrote:)\s*$", re.IGNORECASE
)
_QUOTE_SEPARATOR = re.compile(
    r"^\s*-{2,}\s*(?:Ursprüngliche Nachricht|Original-Nachricht|Original Message|Weitergeleitete Nachricht"
    r"|Forwarded message)\s*-{2,}\s*$",
    re.IGNORECASE,
)
# Outlook's quoted header without the dashed line: "Von: …" directly followed by "Gesendet: …",
# or the other way round as GMX and web.de write it.
_HEADER_FROM = re.compile(r"^\s*(?:Von|From):\s", re.IGNORECASE)
_HEADER_SENT = re.compile(r"^\s*(?:Gesendet|Sent|Datum|Date):\s", re.IGNORECASE)
_OUTLOOK_RULE = re.compile(r"^\s*_{10,}\s*$")
_SIGNATURE_MARKERS = ("-- ", "--")
# The line a mail app puts under every mail it sends; what follows it is the quoted mail. A device
# name has no commas or colons, unlike a citizen's "Gesendet von meinem Sohn, da ich …".
_CLIENT_FOOTER = re.compile(
    r"^\s*(?:(?:Gesendet von|Sent from) (?:meinem|my) [\w .-]{1,40}|Von meinem [\w .-]{1,40} gesendet\.?"
    r"|Gesendet mit der (?:WEB\.DE|GMX) Mail App"
    r"|(?:Holen Sie sich Outlook für|Get Outlook for) (?:iOS|Android)(?:<[^>]*>)?)\s*$",
    re.IGNORECASE,
)

# C1 controls never stand for text in a header: they are Windows-1252 bytes under a Latin-1 label
# ("=?iso-8859-1?q?=96?=" is Outlook's en dash), read as WHATWG reads such labels.
_C1_AS_CP1252 = {
    code: bytes([code]).decode("cp1252") for code in range(0x80, 0xA0) if code not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
}

_ADDRESS_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_ADDRESS_DOMAIN = re.compile(r"^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")


class _OutgoingPolicy(EmailPolicy):
    """policy.SMTP, except that unstructured headers with non-ASCII text are folded by email.header.

    Python's own folder (3.11; CPython gh-144156) can break a line between two encoded words
    and leave the space between them outside both: RFC 2047 readers drop whitespace between
    adjacent encoded words, so "Sondernutzung – Straßenfest" arrives as "Sondernutzung
    –Straßenfest". email.header encodes the whole text, its spaces inside the encoded words.
    """

    def _needs_encoded_words(self, value: object) -> bool:
        return isinstance(value, UnstructuredHeader) and not self.utf8 and not str(value).isascii()

    def _fold_as_encoded_words(self, name: str, value: str) -> str:
        encoded = Header(str(value), "utf-8", maxlinelen=self.max_line_length, header_name=name)
        return f"{name}: {encoded.encode(linesep=self.linesep)}{self.linesep}"

    def fold(self, name: str, value: str) -> str:
        if self._needs_encoded_words(value):
            return self._fold_as_encoded_words(name, value)
        return str(super().fold(name, value))

    def fold_binary(self, name: str, value: str) -> bytes:
        if self._needs_encoded_words(value):
            return self._fold_as_encoded_words(name, value).encode("ascii")
        return super().fold_binary(name, value)


_OUTGOING = _OutgoingPolicy(linesep="\r\n")
# A forwarded mail's headers as they came: refolding them can fail on what the parser let through.
_AS_RECEIVED = policy.default.clone(refold_source="none")


class EmailSettings(ChannelSettings):
    """A mailbox: sent through an SMTP relay, received at the hub's SMTP listener or by IMAP."""

    address: str = setting(N_("E-Mail-Adresse"), address=True)
    display_name: str | None = setting(N_("Absendername"), default=None)
    smtp_host: str = setting(N_("SMTP-Server"))
    smtp_port: int = setting(N_("SMTP-Port"), hint=N_("Meist 587"))
    smtp_starttls: bool = setting(N_("Verbindung mit STARTTLS verschlüsseln"), default=False)
    smtp_username: SecretStr | None = setting(N_("SMTP-Benutzername"), default=None)
    smtp_password: SecretStr | None = setting(N_("SMTP-Passwort"), default=None)
    message_id_domain: str | None = setting(N_("Domain der Message-IDs"), default=None, on_form=False)
    imap_host: str | None = setting(N_("IMAP-Server"), default=None, on_form=False)
    imap_port: int | None = setting(N_("IMAP-Port"), default=None, on_form=False)
    imap_ssl: bool = setting(N_("IMAP über TLS"), default=True, on_form=False)
    imap_folder: str | None = setting(N_("IMAP-Ordner"), default=None, on_form=False)
    imap_username: SecretStr | None = setting(N_("IMAP-Benutzername"), default=None, on_form=False)
    imap_password: SecretStr | None = setting(N_("IMAP-Passwort"), default=None, on_form=False)
    # Set by `rathaus dkim generate`, one key for all of a town's mailboxes.
    dkim_selector: str | None = setting(N_("DKIM-Selektor"), default=None, on_form=False)
    dkim_private_key: SecretStr | None = setting(N_("DKIM-Schlüssel"), default=None, on_form=False)


def _message_id_domain(config: Mapping[str, Any]) -> str:
    return str(config.get("message_id_domain") or str(config["address"]).rpartition("@")[2])


@register
class EmailAdapter(ChannelAdapter):
    """One mailbox of the hub: inbound via its SMTP listener, outbound through an SMTP relay."""

    kind: ClassVar[str] = "email"
    title: ClassVar[str] = N_("E-Mail")
    label: ClassVar[str] = N_("E-Mail")
    processor: ClassVar[Processor | None] = Processor(
        N_("der E-Mail-Dienstleister der Stadt (SMTP- bzw. IMAP-Server)"),
        N_("Auftragsverarbeiter, soweit die Stadt ihr Postfach nicht selbst betreibt"),
        N_("E-Mail-Adresse, Name, Betreff, Text, Anhänge"),
        N_("wie im Vertrag mit dem Dienstleister vereinbart"),
    )
    identity: ClassVar[Identity] = Identity("email", N_("E-Mail"), N_("E-Mail-Adresse"))
    configuration: ClassVar[type[ChannelSettings]] = EmailSettings
    # Mail reaches the hub by SMTP or IMAP, never by an HTTP webhook.
    webhook: ClassVar[Webhook | None] = None
    receives_mail: ClassVar[bool] = True
    max_body_chars: ClassVar[int] = 100_000
    max_segments: ClassVar[int | None] = None
    supports_media: ClassVar[bool] = True
    supports_choices: ClassVar[bool] = False
    supports_subject: ClassVar[bool] = True
    reply_window: ClassVar[timedelta | None] = None
    rate_per_second: ClassVar[float] = 10.0
    consent_source: ClassVar[str] = "keyword"
    broadcast_rank: ClassVar[int] = 40

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        self.address = str(config["address"])
        self.smtp_host = str(config["smtp_host"])
        self.smtp_port = int(config["smtp_port"])
        self.smtp_starttls = bool(config.get("smtp_starttls", False))
        self.display_name = str(config.get("display_name") or "")
        self.message_id_domain = _message_id_domain(config)
        self._smtp_username = secrets.get("smtp_username")
        self._smtp_password = secrets.get("smtp_password")
        self._dkim_selector = config.get("dkim_selector")
        self._dkim_private_key = secrets.get("dkim_private_key")

    @classmethod
    def new_message_id(cls, config: Mapping[str, Any]) -> str | None:
        return make_msgid(domain=_message_id_domain(config)).strip("<>")

    # --- inbound -------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        # Mail reaches the hub's own SMTP listener unsigned; what makes it ours is the envelope.
        wanted = self.address.lower()
        if not any(_bare_address(rcpt).lower() == wanted for rcpt in request.rcpt_tos):
            raise VerificationError(f"keiner der Empfänger ist {self.address}")

    def parse(self, request: WebhookRequest) -> list[InboundEvent]:
        raw = request.body
        mail = message_from_bytes(raw, policy=policy.default)
        if not mail.keys():
            raise PayloadError("keine gültige E-Mail: keine Kopfzeilen gefunden")

        message_id = _first_message_id(_raw_header(mail, "Message-ID"))
        # Without a Message-ID the hash of the raw mail keeps a re-delivery a no-op.
        provider_id = message_id or f"sha256:{hashlib.sha256(raw).hexdigest()}"
        if _is_delivery_report(mail):
            return [_delivery_report(mail, provider_id)]

        sender, sender_name = _sender_of(mail)
        if sender is None:
            sender = _bare_address(request.mail_from or "").lower() or None
        if sender is None:
            raise PayloadError("keine gültige E-Mail: kein Absender (From) und leerer Umschlag")
        subject = mail.get("Subject")

        return [
            InboundMessage(
                provider_id=provider_id,
                sender=sender,
                sender_name=sender_name,
                recipient=self.address,
                subject=_header_text(str(subject)) if subject is not None else None,
                text=strip_quoted_history(_body_text(mail)),
                sent_at=_sent_at(mail),
                in_reply_to=_unique(
                    [
                        *_message_ids(_raw_header(mail, "In-Reply-To")),
                        *_message_ids(_raw_header(mail, "References")),
                    ]
                ),
                automated=_is_automated(mail, sender, request.mail_from),
                attachments=tuple(_attachments(mail)),
                calendar_reply=_calendar_reply(mail),
            )
        ]

    # --- outbound ------------------------------------------------------------------------

    def send(self, message: OutboundMessage) -> Receipt:
        if len(message.text) > self.max_body_chars:
            raise PermanentError(f"Text ist {len(message.text)} Zeichen lang, erlaubt sind {self.max_body_chars}")
        recipient = _valid_recipient(message.to)
        mail = self._build(message, recipient)
        message_id = str(mail["Message-ID"]).strip().strip("<>")
        raw = self._signed(mail.as_bytes(policy=_OUTGOING))
        # RFC 3834 §3.3: automatic answers go out with a null return path, so bounces of
        # them cannot start a loop between two robots.
        envelope_sender = "" if message.automated else self.address
        with self._relay(refused=f"Empfänger {recipient} abgelehnt") as smtp:
            smtp.sendmail(envelope_sender, [recipient], raw)
        return Receipt(provider_id=message_id)

    def check_credentials(self) -> bool:
        """Connects to the relay and logs in as a send would (STARTTLS included), then leaves without sending."""
        with self._relay(refused="abgelehnt") as smtp:
            smtp.noop()
        return True

    @contextmanager
    def _relay(self, *, refused: str) -> Iterator[smtplib.SMTP]:
        """A session with the SMTP relay, logged in where the account has a user; its failures as send errors.

        `refused` says what a refusal of the recipients is about.
        """
        try:
            with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
                if self.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self._smtp_username:
                    smtp.login(str(self._smtp_username), str(self._smtp_password or ""))
                yield smtp
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (0, b""))
            raise _classify_smtp_reply(code, reply, refused) from exc
        except smtplib.SMTPResponseException as exc:
            raise _classify_smtp_reply(exc.smtp_code, exc.smtp_error, "SMTP-Fehler") from exc
        except smtplib.SMTPServerDisconnected as exc:
            raise TransientError("SMTP-Server hat die Verbindung getrennt") from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentError(f"SMTP-Server unterstützt das nicht: {exc}") from exc
        except smtplib.SMTPException as exc:
            raise PermanentError(f"SMTP-Fehler: {exc}") from exc
        except ssl.SSLCertVerificationError as exc:
            raise PermanentError(f"TLS-Zertifikat des SMTP-Servers ungültig: {exc}") from exc
        except OSError as exc:
            # Connection refused, timeouts, DNS and network errors: the relay may come back.
            raise TransientError(
                f"SMTP-Server {self.smtp_host}:{self.smtp_port} nicht erreichbar ({type(exc).__name__})"
            ) from exc

    def _signed(self, raw: bytes) -> bytes:
        """The mail with a DKIM signature atop when the town has a key; d= is the From domain, for DMARC."""
        if not (self._dkim_selector and self._dkim_private_key):
            return raw
        domain = self.address.rpartition("@")[2].encode("idna").decode("ascii")
        return (
            signature_field(
                raw, selector=str(self._dkim_selector), domain=domain, private_pem=str(self._dkim_private_key)
            )
            + raw
        )

    def _build(self, message: OutboundMessage, recipient: str) -> EmailMessage:
        mail = EmailMessage(policy=_OUTGOING)
        display_name = _one_line(self.display_name or message.sender_name or "")
        mail["From"] = Address(display_name=display_name, addr_spec=self.address)
        mail["To"] = recipient
        mail["Subject"] = _one_line(message.subject or "") or DEFAULT_SUBJECT
        mail["Date"] = formatdate(localtime=True)
        mail["Message-ID"] = (
            _angle_bracketed(message.message_id) if message.message_id else make_msgid(domain=self.message_id_domain)
        )
        references = list(message.references)
        if message.reply_to_ref:
            mail["In-Reply-To"] = _angle_bracketed(message.reply_to_ref)
            # RFC 5322 §3.6.4: References ends with the parent's id.
            if message.reply_to_ref.strip("<>") not in {ref.strip("<>") for ref in references}:
                references.append(message.reply_to_ref)
        if references:
            mail["References"] = " ".join(_angle_bracketed(ref) for ref in references)
        if message.automated:
            mail["Auto-Submitted"] = "auto-replied"
            mail["X-Auto-Response-Suppress"] = "OOF, AutoReply"
        for name, value in message.headers:
            mail[name] = _one_line(value)
        # Quoted-printable keeps umlauts 7-bit clean for conservative relays.
        mail.set_content(message.text, cte="quoted-printable")
        if message.html is not None:
            mail.add_alternative(message.html, subtype="html", cte="quoted-printable")
        scheduling = [attachment for attachment in message.attachments if _itip_method(attachment)]
        for attachment in scheduling:
            # RFC 6047 §2.4 and CalConnect's iMIP practice: the invitation is an alternative of the
            # text (calendars show "accept/decline" for it), and the same file is attached for
            # clients that only import attachments.
            assert attachment.data is not None
            mail.add_alternative(
                attachment.data.decode("utf-8"), subtype="calendar", cte="base64",
                params={"method": _itip_method(attachment) or ""},
            )  # fmt: skip
        for attachment in message.attachments:
            if attachment.data is None:
                continue  # a provider's URL is nothing a mail can carry
            if attachment in scheduling:
                mail.add_attachment(attachment.data, maintype="application", subtype="ics",
                                    filename=attachment.filename or "einladung.ics")  # fmt: skip
                continue
            maintype, _, subtype = attachment.content_type.partition("/")
            mail.add_attachment(
                attachment.data, maintype=maintype, subtype=subtype or "octet-stream", filename=attachment.filename
            )
        return mail


# --- helpers: addresses and ids ----------------------------------------------------------


def _one_line(value: str) -> str:
    # A line break in a header value would make EmailMessage refuse the header.
    return " ".join(value.split())


def _bare_address(value: str) -> str:
    return value.strip().strip("<>").strip()


def _angle_bracketed(message_id: str) -> str:
    return f"<{message_id.strip().strip('<>')}>"


def _valid_recipient(to: str) -> str:
    """The address to send to, or PermanentError: a bad address never gets better by retrying."""
    candidate = to.strip()
    local, at, domain = candidate.rpartition("@")
    if not at or not _ADDRESS_LOCAL_PART.match(local) or len(candidate) > 254:
        raise PermanentError(f"ungültige E-Mail-Adresse: {to!r}")
    try:
        # Internationalised domains (umlauts) travel as punycode.
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise PermanentError(f"ungültige E-Mail-Adresse: {to!r}") from exc
    if not _ADDRESS_DOMAIN.match(ascii_domain):
        raise PermanentError(f"ungültige E-Mail-Adresse: {to!r}")
    return f"{local}@{ascii_domain}"


def _raw_header(message: Message, name: str) -> str | None:
    """A field's text as it came (unfolded, raw 8-bit decoded), for fields read as tokens: ids, keywords.

    The default policy's parsers raise on some malformed values ("Message-ID: <>"), and these
    fields need no decoding, so they are not handed to them.
    """
    wanted = name.lower()
    value = next((value for key, value in message.raw_items() if key.lower() == wanted), None)
    return _header_text(" ".join(value.split())) if value is not None else None


def _message_ids(value: str | None) -> list[str]:
    if value is None:
        return []
    found = _MESSAGE_ID_TOKEN.findall(value)
    # Some clients omit the angle brackets; then the ids are whitespace-separated.
    return found or value.split()


def _first_message_id(value: str | None) -> str | None:
    ids = _message_ids(value)
    return ids[0] if ids else None


def _unique(ids: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(ids))


def _sender_of(mail: EmailMessage) -> tuple[str | None, str | None]:
    try:
        header = mail.get("From")
        addresses = getattr(header, "addresses", ()) if header is not None else ()
    except (HeaderParseError, IndexError, ValueError):
        # The stdlib's address parser fails on some garbage ("From: <"); the envelope still names a sender.
        return None, None
    for address in addresses:
        addr_spec = _bare_address(address.addr_spec)
        if addr_spec:
            sender = _header_text(addr_spec).lower()
            name = _header_text(address.display_name).strip().strip("'\"")
            # Many mail programs repeat the address as the display name; that names nobody.
            return sender, name if name and name.lower() != sender else None
    return None, None


def _sent_at(mail: EmailMessage) -> datetime | None:
    sent = getattr(mail.get("Date"), "datetime", None)
    if not isinstance(sent, datetime):
        return None
    # "-0000" means "zone unknown" and parses naive; UTC is the least surprising reading.
    return sent if sent.tzinfo is not None else sent.replace(tzinfo=UTC)


def _is_automated(mail: EmailMessage, sender: str, envelope_sender: str | None) -> bool:
    auto_submitted = mail.get("Auto-Submitted")
    if auto_submitted is not None and str(auto_submitted).split(";")[0].strip().lower() != "no":
        return True
    if str(mail.get("Precedence", "")).strip().lower() in _BULK_PRECEDENCE:
        return True
    if any(name in mail for name in (*_AUTORESPONDER_HEADERS, *_MAILING_LIST_HEADERS)):
        return True
    # A null return path (SMTP envelope, or Return-Path of a stored mail) marks bounces.
    if envelope_sender is not None and _bare_address(envelope_sender) == "":
        return True
    return_path = mail.get("Return-Path")
    if return_path is not None and _bare_address(str(return_path)) == "":
        return True
    # Delivery and read receipts (RFC 6522).
    if mail.get_content_type() == "multipart/report":
        return True
    local_part = sender.rpartition("@")[0].lower() if "@" in sender else sender.lower()
    return local_part in _ROBOT_LOCAL_PARTS or local_part.startswith("owner-") or local_part.endswith("-request")


# --- helpers: bounces -------------------------------------------------------------------


def _is_delivery_report(mail: EmailMessage) -> bool:
    report_type = str(mail.get_param("report-type", "")).lower()
    return mail.get_content_type() == "multipart/report" and report_type == "delivery-status"


def _delivery_report(mail: EmailMessage, event_id: str) -> StatusUpdate | IgnoredEvent:
    """A bounce (RFC 3464 delivery status notification) as the delivery status of the mail it returns.

    That mail is found by the Message-ID the hub gave it (which `send` returned as the provider
    id): named in the report (Gmail's X-Original-Message-ID), in the returned original or its
    headers, else in In-Reply-To/References, which some servers set instead. Only a final
    result moves the mail; a delay warning is kept as ignored.
    """
    blocks: list[Message] = []
    returned: list[str] = []
    # A multipart whose boundary never occurs has text as its payload, which iter_parts would yield.
    for part in mail.iter_parts() if mail.is_multipart() else ():
        if part.get_content_type() == "message/delivery-status" and part.is_multipart():
            # The parser splits this part into its field blocks: one per message, then one per recipient.
            blocks.extend(block for block in part.get_payload() if isinstance(block, Message))
        elif part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            returned.extend(_returned_message_ids(part))
    named = [
        found for block in blocks for name in _ORIGINAL_ID_FIELDS for found in _message_ids(_raw_header(block, name))
    ]
    threaded = [*_message_ids(_raw_header(mail, "In-Reply-To")), *_message_ids(_raw_header(mail, "References"))]
    original = next(iter([*named, *returned, *threaded]), None)
    recipients = [block for block in blocks if _raw_header(block, "Action") or _raw_header(block, "Status")]
    if original is None:
        return IgnoredEvent(event_id, reason="Unzustellbarkeitsbericht ohne Message-ID der zurückgekommenen Nachricht")
    if not recipients:
        return IgnoredEvent(event_id, reason=f"Zustellbericht zu {original} ohne Angaben zum Empfänger")
    report = min(recipients, key=lambda block: _DSN_ACTION_ORDER.get(_dsn_action(block), len(_DSN_ACTION_ORDER)))
    action = _dsn_action(report)
    diagnostic = _dsn_field(report, "Diagnostic-Code")
    code = _dsn_field(report, "Status").split(" ")[0] or _status_code_in(diagnostic)
    if action == "delivered":
        return StatusUpdate(provider_id=original, status="delivered", event_id=event_id)
    if action != "failed":
        return IgnoredEvent(event_id, reason=f"Zwischenbericht {action!r} ({code}) zu {original}: kein Zustellergebnis")
    recipient = _dsn_field(report, "Final-Recipient") or _dsn_field(report, "Original-Recipient")
    return StatusUpdate(
        provider_id=original,
        status="failed",
        error_code=code or None,
        error_message=f"Unzustellbar an {recipient or 'den Empfänger'}: {diagnostic or code or 'ohne Angabe'}",
        event_id=event_id,
    )


_ORIGINAL_ID_FIELDS = ("Original-Message-ID", "X-Original-Message-ID")
# The one recipient block that speaks for a bounce: the hub sends each mail to one recipient.
_DSN_ACTION_ORDER = {"failed": 0, "delivered": 1, "delayed": 2}
_ENHANCED_STATUS = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b|\b[245]\d\d\b")


def _dsn_field(block: Message, name: str) -> str:
    """A field's value without its type ("rfc822; a@b" -> "a@b", "smtp; 550 …" -> "550 …"), unfolded."""
    value = _raw_header(block, name) or ""
    kind, separator, rest = value.partition(";")
    return rest.strip() if separator and " " not in kind.strip() else value


def _dsn_action(block: Message) -> str:
    action = _dsn_field(block, "Action").lower()
    if action:
        return action
    # RFC 3463: the status class says the result when a report leaves out the action.
    return {"5": "failed", "4": "delayed", "2": "delivered"}.get(_dsn_field(block, "Status")[:1], "")


def _status_code_in(diagnostic: str) -> str:
    found = _ENHANCED_STATUS.search(diagnostic)
    return found.group(0) if found else ""


def _returned_message_ids(part: MIMEPart) -> list[str]:
    """The Message-ID of the mail a bounce returns, whole (message/rfc822) or as its headers only."""
    if part.is_multipart():
        inner = part.get_payload(0)
        return _message_ids(_raw_header(inner, "Message-ID")) if isinstance(inner, Message) else []
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return []
    return _message_ids(_raw_header(BytesHeaderParser(policy=policy.default).parsebytes(data), "Message-ID"))


# --- helpers: body text ------------------------------------------------------------------


def _header_text(value: str) -> str:
    """Header text free of the surrogate escapes the parser leaves for raw 8-bit bytes.

    Many mailers put UTF-8 (or Latin-1) straight into headers instead of RFC 2047 words;
    the bytes are recovered and decoded like an unlabelled body.
    """
    if any("\udc80" <= char <= "\udcff" for char in value):
        value = _decode_text(value.encode("utf-8", "surrogateescape"), None)
    return value.translate(_C1_AS_CP1252)


def _decode_text(data: bytes, charset: str | None) -> str:
    """Decode a text part without ever raising, reading Latin-1/ASCII labels as WHATWG does."""
    label = charset.lower() if charset else None
    declared = "cp1252" if label is None or label in _WINDOWS_1252_LABELS else label
    # Unlabelled and Latin-1/ASCII-labelled mail is often really UTF-8; strict UTF-8 almost
    # never decodes text in another charset, so trying it first is safe.
    candidates = ["utf-8", "cp1252"] if declared == "cp1252" else [declared, "cp1252"]
    for encoding in candidates:
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("utf-8", errors="replace")


def _part_text(part: MIMEPart) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    return _decode_text(data, part.get_content_charset())


def _body_text(mail: EmailMessage) -> str:
    try:
        body = mail.get_body(preferencelist=("plain", "html"))
    except AttributeError:
        # CPython's get_body indexes a multipart/related part whose boundary never occurs (its
        # payload is then text): there is no readable part to find in such a tree.
        body = None
    if body is None:
        return ""
    text = _part_text(body)
    if body.get_content_subtype() == "html":
        text = html_to_text(text)
    return text.replace("\r\n", "\n").strip()


# A no-break space is text to a browser (GMX and web.de write an empty line as <div>&nbsp;</div>)
# but collapsible whitespace to inscriptis; it passes through as a word joiner, then becomes a space.
_NO_BREAK_SPACE = re.compile(r"&nbsp;|&#160;|&#xa0;|\xa0", re.IGNORECASE)
_WORD_JOINER = "\u2060"


def _word_paragraph_start(state: HtmlDocumentState, attrs: dict[str, str]) -> None:
    """Outlook's paragraphs are lines: its stylesheet gives "MsoNormal" no margins, empty ones make the gaps."""
    if "MsoNormal" in attrs.get("class", "").split():
        state.tags[-1].margin_before = state.tags[-1].margin_after = 0


def _dash_list_start(state: HtmlDocumentState, _: dict[str, str]) -> None:
    """Items as a citizen would type them in a plain-text mail, with the blank line around the list a browser shows."""
    state.li_counter.append("- ")
    state.tags[-1].margin_before = 1


def _dash_list_end(state: HtmlDocumentState) -> None:
    state.li_counter.pop()
    state.tags[-1].margin_after = 1


_MAIL_LAYOUT = ParserConfig(
    css=CSS_PROFILES["strict"],
    custom_html_tag_handler_mapping=CustomHtmlTagHandlerMapping(
        start_tag_mapping={"p": _word_paragraph_start, "ul": _dash_list_start},
        end_tag_mapping={"ul": _dash_list_end},
    ),
)


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML mail body, laid out as a browser shows it: no tags, scripts or styles.

    Spaces within a line are collapsed: the inbox shows text in a proportional font, where
    inscriptis's aligned table columns would only be stray gaps.
    """
    text = inscriptis.get_text(_NO_BREAK_SPACE.sub(_WORD_JOINER, html), _MAIL_LAYOUT).replace(_WORD_JOINER, " ")
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _is_attribution(line: str, next_lines: list[str]) -> bool:
    # Gmail wraps a long "Am … schrieb Name <" + "address>:" attribution onto a second line.
    for candidate in (line, " ".join([line, *next_lines])):
        if _QUOTE_ATTRIBUTION.match(candidate) and any(char.isdigit() for char in candidate):
            return True
    return False


def _is_quoted_header(line: str, next_line: str) -> bool:
    return bool(
        (_HEADER_FROM.match(line) and _HEADER_SENT.match(next_line))
        or (_HEADER_SENT.match(line) and _HEADER_FROM.match(next_line))
    )


def _history_start(lines: list[str]) -> int:
    """The index of the first line of quoted history, client footer or signature; len(lines) if none."""
    for index, line in enumerate(lines):
        following = lines[index + 1 : index + 2]
        if _QUOTE_SEPARATOR.match(line) or _is_attribution(line, following):
            return index
        if line.rstrip("\r") in _SIGNATURE_MARKERS or _CLIENT_FOOTER.match(line):
            return index
        if following and _is_quoted_header(line, following[0]):
            return index - 1 if index > 0 and _OUTLOOK_RULE.match(lines[index - 1]) else index
    return len(lines)


def _without_trailing_quote(lines: list[str]) -> str:
    kept = list(lines)
    while kept and (not kept[-1].strip() or kept[-1].lstrip().startswith(">")):
        kept.pop()
    return "\n".join(kept).strip()


def strip_quoted_history(text: str) -> str:
    """The new part of a reply: cut at the quote header, client footer or signature, drop trailing `>` lines.

    A reply written between the quoted lines starts with the attribution: it is kept whole, but
    for the quote after its last answer. A mail that is all quote is returned unchanged.
    """
    lines = text.split("\n")
    return _without_trailing_quote(lines[: _history_start(lines)]) or _without_trailing_quote(lines) or text


# --- helpers: attachments ----------------------------------------------------------------


def _attachments(part: MIMEPart) -> list[Attachment]:
    if part.get_filename() or part.get_content_disposition() == "attachment":
        return [_attachment_of(part)]
    # An embedded message (the original inside a bounce) is not this mail's attachment.
    if part.get_content_maintype() == "message" or not part.is_multipart():
        return []
    found: list[Attachment] = []
    for child in part.iter_parts():
        found.extend(_attachments(child))
    return found


def _attachment_of(part: MIMEPart) -> Attachment:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        # A forwarded mail (message/rfc822) has a parsed message as payload.
        inner = part.get_payload(0) if part.is_multipart() else None
        data = inner.as_bytes(policy=_AS_RECEIVED) if isinstance(inner, Message) else b""
    return Attachment(
        filename=_header_text(filename) if (filename := part.get_filename()) else None,
        content_type=part.get_content_type(),
        data=data,
        size=len(data),
    )


# --- helpers: calendar invitations (iMIP, RFC 6047) ---------------------------------------

_ITIP_METHOD = re.compile(r"^\s*text/calendar\s*;.*\bmethod\s*=\s*\"?([A-Za-z-]+)\"?", re.IGNORECASE)
_PARTSTATS: dict[str, Any] = {"ACCEPTED": "accepted", "DECLINED": "declined", "TENTATIVE": "tentative"}


def _itip_method(attachment: Attachment) -> str | None:
    """The iTIP method an outbound calendar file names (channels.base.CALENDAR_METHOD_TYPE), if it has its bytes."""
    found = _ITIP_METHOD.match(attachment.content_type)
    return found.group(1).upper() if found and attachment.data is not None else None


def _calendar_parts(mail: EmailMessage) -> Iterable[MIMEPart]:
    # Google sends the REPLY as application/ics without a method parameter; the METHOD inside decides.
    for part in mail.walk():
        if part.get_content_type() in ("text/calendar", "application/ics") and not part.is_multipart():
            yield part


def _calendar_reply(mail: EmailMessage) -> CalendarReply | None:
    """The iTIP REPLY (RFC 5546 §3.2.3) a citizen's calendar sent, from the mail's first calendar part that is one.

    Calendar data that cannot be read, or that is no REPLY with one answering attendee, is no
    answer: the mail is then an ordinary message.
    """
    for part in _calendar_parts(mail):
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        try:
            calendar = Calendar.from_ical(data)
            if str(calendar.get("METHOD", "")).upper() != "REPLY":
                continue
            return _reply_of(calendar)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            return None
    return None


def _reply_of(calendar: Calendar) -> CalendarReply | None:
    events = calendar.walk("VEVENT")
    if len(events) != 1:
        return None
    event = events[0]
    uid = str(event.get("UID", "")).strip()
    attendees = event.get("ATTENDEE")
    if not isinstance(attendees, list):
        attendees = [attendees] if attendees is not None else []
    answers = [
        (str(attendee), _PARTSTATS[str(attendee.params.get("PARTSTAT", "")).upper()])
        for attendee in attendees
        if str(getattr(attendee, "params", {}).get("PARTSTAT", "")).upper() in _PARTSTATS
    ]
    if not uid or len(answers) != 1:
        return None
    address, answer = answers[0]
    scheme, _, bare = address.partition(":")
    if scheme.lower() != "mailto" or "@" not in bare:
        return None
    sequence = int(event.get("SEQUENCE", 0))
    return CalendarReply(uid=uid, sequence=sequence, attendee=bare.strip().lower(), answer=answer)


# --- helpers: SMTP errors ----------------------------------------------------------------


def _classify_smtp_reply(code: int, reply: bytes | str, what: str) -> PermanentError | TransientError:
    text = reply.decode("utf-8", errors="replace") if isinstance(reply, bytes) else reply
    detail = f"{what}: {code} {text}".strip()
    # RFC 5321 §4.2.1: 4yz is a transient negative reply, 5yz a permanent one.
    if 500 <= code < 600:
        return PermanentError(detail, code=str(code))
    return TransientError(detail, code=str(code))
