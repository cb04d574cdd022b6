"""The channel Protocol, the normalised types every adapter speaks, and the error classes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

ChannelKind = Literal["twilio", "telegram", "facebook", "email"]

# The kind of address a contact identity holds, per channel kind.
IDENTITY_KIND: dict[str, str] = {
    "twilio": "phone",
    "telegram": "telegram",
    "facebook": "facebook",
    "email": "email",
}


@dataclass(frozen=True)
class WebhookRequest:
    """What an adapter may look at of an inbound HTTP request (or, for email, the SMTP envelope).

    `url` is the public URL the provider called (query string included), which is what
    Twilio signs; `body` is the raw bytes, which is what Meta signs.
    """

    url: str
    headers: Mapping[str, str]
    body: bytes
    method: str = "POST"
    query: Mapping[str, str] = field(default_factory=dict)
    # SMTP only: envelope sender and recipients.
    mail_from: str | None = None
    rcpt_tos: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        """Case-insensitive header lookup: `headers` may be a plain dict with any spelling."""
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)


def required_setting(settings: Mapping[str, Any], key: str, kind: str) -> str:
    """A channel account's config or secret that the adapter cannot work without."""
    value = settings.get(key)
    if not value:
        raise ValueError(f"{kind}-Kanal: Einstellung {key!r} fehlt")
    return str(value)


@dataclass(frozen=True)
class Attachment:
    """A file that came with a message: either fetched bytes (email) or a provider URL/file id."""

    filename: str | None
    content_type: str
    url: str | None = None
    data: bytes | None = None
    size: int | None = None


@dataclass(frozen=True)
class InboundMessage:
    """A citizen's message, comment, button press or edit, free of provider dicts.

    `provider_id` is unique per channel account (MessageSid, "<chat id>:<message id>", mid,
    comment id, Message-ID) and is what makes a retried webhook a no-op. It must name the
    message itself, never the delivery: Telegram's update ids start again after a quiet week.
    `sender` is the identity address: E.164 phone, Telegram chat id, page-scoped id, email.
    `thread_key` separates conversations on one identity: a Facebook comment thread is
    "post:<post_id>"; direct messages leave it None.
    `reply_to_ref` is what an outbound reply must point at: the comment id to answer under.
    `postback_ref` is the provider's handle to acknowledge a button press (Telegram callback
    query id); None where presses need no acknowledgement.
    `automated` marks loop risks (Auto-Submitted mail, bulk, MAILER-DAEMON): stored, never
    auto-answered.
    `shared_chat`: written where others read along (a Telegram group), so an answer there
    reaches all of them and must carry nothing personal such as the status link.
    """

    provider_id: str
    sender: str
    text: str
    kind: Literal["message", "comment", "postback", "edit"] = "message"
    sender_name: str | None = None
    subject: str | None = None
    sent_at: datetime | None = None
    language: str | None = None
    thread_key: str | None = None
    reply_to_ref: str | None = None
    in_reply_to: tuple[str, ...] = ()
    automated: bool = False
    attachments: tuple[Attachment, ...] = ()
    recipient: str | None = None
    postback_ref: str | None = None
    shared_chat: bool = False


@dataclass(frozen=True)
class StatusUpdate:
    """A provider's report on an outbound message (Twilio status callback and the like)."""

    provider_id: str
    status: Literal["sent", "delivered", "undelivered", "failed", "read"]
    error_code: str | None = None
    error_message: str | None = None
    event_id: str | None = None


@dataclass(frozen=True)
class IgnoredEvent:
    """An event that is valid but asks nothing of the inbox (echo, page's own comment, unknown type).

    It is kept with its reason so that a retried delivery stays a no-op and staff can see why
    nothing appeared.
    """

    provider_id: str
    reason: str


@dataclass(frozen=True)
class OptOut:
    """The provider reports that the hub may no longer write to `sender`: the citizen blocked the
    bot, or a group removed it. Recorded as a withdrawal of consent, with `reason` as evidence.
    """

    provider_id: str
    sender: str
    reason: str


InboundEvent = InboundMessage | StatusUpdate | OptOut | IgnoredEvent


@dataclass(frozen=True)
class Choice:
    """A button the citizen can press instead of typing: Telegram inline button, Messenger quick reply.

    `payload` comes back as the text of a postback InboundMessage (at most 64 bytes, Telegram's
    callback_data limit). Channels without buttons (SMS, email) get the choices written into
    the text by the caller instead.
    """

    label: str
    payload: str


@dataclass(frozen=True)
class OutboundMessage:
    """One message to send to one address.

    `reply_to_ref`: the comment to answer under (Facebook) or None for a direct message.
    `email_message_id`, `in_reply_to`, `references`: RFC 5322 threading for email.
    `window_open`: Messenger's 24-hour window; False makes the adapter use the HUMAN_AGENT tag.
    `status_callback`: URL the provider should report delivery to (Twilio).
    `automated`: an automatic answer (acknowledgement), marked so mail robots do not answer it.
    `choices`: buttons, on channels that have them (see Choice).
    `html`, `headers`: email only: an HTML alternative to the text, and extra header fields
    (List-Unsubscribe, Auto-Submitted: auto-generated for broadcasts).
    """

    to: str
    text: str
    subject: str | None = None
    reply_to_ref: str | None = None
    email_message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    window_open: bool = True
    status_callback: str | None = None
    automated: bool = False
    sender_name: str | None = None
    choices: tuple[Choice, ...] = ()
    html: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Receipt:
    """What the provider answered to a send: its id for the message and what it reports."""

    provider_id: str
    status: str = "sent"
    segments: int | None = None
    encoding: str | None = None


class ChannelError(Exception):
    """Base of send errors; `code` is the provider's error code as text, if any."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class TransientError(ChannelError):
    """Worth retrying: rate limit, 5xx, timeout, network. `retry_after` in seconds if the provider said."""

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class PermanentError(ChannelError):
    """Retrying cannot help: invalid number, policy window closed, bad credentials."""


class OptedOutError(PermanentError):
    """The recipient has blocked us or replied STOP at the provider (Twilio 21610, Telegram 403)."""


class VerificationError(Exception):
    """The request's signature or secret is missing or wrong: answer 403, store nothing."""


class PayloadError(Exception):
    """The body is signed correctly but cannot be read: answer 400 with this message."""


@runtime_checkable
class ChannelAdapter(Protocol):
    """What the hub needs of a provider. Adapters keep provider dicts to themselves.

    An adapter is built from a channel account's `config` (public settings such as the
    phone number, page id, API base URL) and `secrets` (tokens); see `registry.build_adapter`.
    """

    kind: ClassVar[str]
    max_body_chars: ClassVar[int]
    max_segments: ClassVar[int | None]
    supports_media: ClassVar[bool]
    rate_per_second: ClassVar[float]

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None: ...

    def verify(self, request: WebhookRequest) -> None:
        """Raise VerificationError unless the request carries the provider's valid signature."""

    def parse(self, request: WebhookRequest) -> list[InboundEvent]:
        """Turn a verified request into normalised events; raise PayloadError if unreadable."""

    def send(self, message: OutboundMessage) -> Receipt:
        """Send one message; raise TransientError, PermanentError or OptedOutError."""
