"""The channel Protocol, the normalised types every adapter speaks, and the error classes.

Everything the hub needs to know about a provider is asked of the adapter class: what kind of
address it reaches, what a message on it can carry, how it is configured and how its webhook
answers. Nothing outside channels/ compares a kind's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal, Protocol, get_args, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo


def N_(message: str) -> str:  # noqa: N802 (gettext's name for "mark for translation only")
    """Marks a German text for the hub's catalogues; channels/ cannot import the hub's own marker."""
    return message


@dataclass(frozen=True)
class Processor:
    """Who carries citizens' data for a channel, for the town's record of processing (DSGVO Art. 30).

    `name` is the company, `role` its part (processor, joint controller), `data` what it receives,
    `location` where it processes and on what ground data leaves the EU; the texts are German msgids.
    """

    name: str
    role: str
    data: str
    location: str


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
class Identity:
    """The kind of address a channel reaches a citizen at, as the hub's contact identities store it.

    `kind` is "phone" (E.164), "telegram" (chat id), "facebook" (page-scoped id) or "email";
    two channels reaching the same kind of address (SMS and a phone messenger) share it.
    `hint` says what to type as such an address.
    """

    kind: str
    label: str
    hint: str


@dataclass(frozen=True)
class Webhook:
    """How a provider calls the hub over HTTP, at /webhooks/<kind>/<account id>.

    `answer` and `media_type`: what it expects back once a delivery is stored. `handshake`:
    it sends a GET with a challenge when the webhook is set up, which `verify_subscription`
    answers. `status_reports`: it reports delivery to <webhook>/status, a URL given with
    each message (OutboundMessage.status_callback).
    """

    answer: str
    media_type: str
    handshake: bool = False
    status_reports: bool = False


@dataclass(frozen=True)
class SettingProblem:
    """What is wrong with one setting: a German msgid naming the setting as `{title}`, its title a msgid too.

    The hub says it in the reader's language; str() is the German phrase, for the command line.
    """

    message: str
    title: str

    def __str__(self) -> str:
        return self.message.format(title=self.title)


class InvalidSetting(ValueError):
    """A value typed for a setting that is not of the setting's type."""

    def __init__(self, problem: SettingProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass(frozen=True)
class SettingField:
    """One setting of a channel account, as the admin form and `rathaus channel add` offer it.

    `secret` ones are kept in the account's secrets, the rest in its config. `generated`: a
    secret the hub makes itself and shows for the provider's console (Telegram's webhook
    secret, Meta's verify token). `address`: the setting that names the account to people
    (its number, bot, page, mailbox). `on_form`: False for settings only the command line
    sets (IMAP, API addresses of emulators, rate caps).
    """

    key: str
    title: str
    hint: str | None
    secret: bool
    required: bool
    input: Literal["text", "number", "decimal", "checkbox"]
    generated: bool = False
    address: bool = False
    on_form: bool = True

    def parse(self, text: str) -> Any:
        """A value typed as text (a form field, a command-line pair) in the setting's type."""
        value = text.strip()
        if self.input == "checkbox":
            return value.lower() in ("1", "true", "yes", "on", "ja")
        if self.input == "number" and value:
            if not value.isdigit():
                raise InvalidSetting(SettingProblem(N_("{title}: bitte eine ganze Zahl angeben."), self.title))
            return int(value)
        if self.input == "decimal" and value:
            try:
                return float(value.replace(",", "."))
            except ValueError:
                raise InvalidSetting(SettingProblem(N_("{title}: bitte eine Zahl angeben."), self.title)) from None
        return value


def setting(
    title: str,
    *,
    hint: str | None = None,
    default: Any = ...,
    generated: bool = False,
    address: bool = False,
    on_form: bool = True,
) -> Any:
    """A field of a settings model: German title and help text, and how the hub treats it."""
    extra: dict[str, bool] = {"generated": generated, "address": address, "on_form": on_form and not generated}
    return Field(default, title=title, description=hint, json_schema_extra=extra)  # type: ignore[arg-type]


def _field_input(annotation: Any) -> Literal["text", "number", "decimal", "checkbox"]:
    types = set(get_args(annotation)) - {type(None)} or {annotation}
    if bool in types:
        return "checkbox"
    if int in types:
        return "number"
    if float in types:
        return "decimal"
    return "text"


class ProviderSettings(BaseModel):
    """A provider module's typed configuration, from which the admin form and the command line are made.

    Plain fields are the config, SecretStr fields the secrets. Keys it does not declare are let
    through (extra="allow"): the demo adds the sandbox's own. A family of providers (channel
    adapters, video platforms) subclasses it once with the fields all its members share.
    """

    model_config = ConfigDict(extra="allow")

    @classmethod
    def fields(cls) -> tuple[SettingField, ...]:
        """The settings in the order the form shows them; those the family shares come last."""
        family: type[ProviderSettings] = next(
            (base for base in cls.__mro__ if ProviderSettings in base.__bases__ and issubclass(base, ProviderSettings)),
            cls,
        )
        own = [key for key in cls.model_fields if key not in family.model_fields]
        return tuple(_setting_field(key, cls.model_fields[key]) for key in [*own, *family.model_fields])

    @classmethod
    def address_key(cls) -> str:
        return next(item.key for item in cls.fields() if item.address)

    @classmethod
    def problems(cls, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> list[SettingProblem]:
        """What is missing or malformed in an account's settings, one problem each."""
        try:
            cls.model_validate({**config, **secrets})
        except ValidationError as error:
            titles = {item.key: item.title for item in cls.fields()}
            return [
                SettingProblem(
                    N_("{title} fehlt") if detail["type"] == "missing" else N_("{title} hat nicht die erwartete Form"),
                    titles.get(str(detail["loc"][0]), str(detail["loc"][0])),
                )
                for detail in error.errors()
            ]
        return []


class ChannelSettings(ProviderSettings):
    """A channel adapter's configuration: its own settings, then the rate every channel account has."""

    rate_per_second: float | None = setting(
        N_("Nachrichten pro Sekunde"),
        hint=N_("Leer lassen für die Grenze des Anbieters."),
        default=None,
        on_form=False,
    )


def _setting_field(key: str, info: FieldInfo) -> SettingField:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    secret = SecretStr in (set(get_args(info.annotation)) | {info.annotation})
    return SettingField(
        key=key,
        title=info.title or key,
        hint=info.description,
        secret=secret,
        required=info.is_required(),
        input="text" if secret else _field_input(info.annotation),
        generated=bool(extra.get("generated")),
        address=bool(extra.get("address")),
        on_form=bool(extra.get("on_form", True)),
    )


@dataclass(frozen=True)
class Attachment:
    """A file that came with a message: either fetched bytes (email) or a provider URL/file id."""

    filename: str | None
    content_type: str
    url: str | None = None
    data: bytes | None = None
    size: int | None = None


@dataclass(frozen=True)
class Location:
    """A point a citizen shared in a chat (Telegram location, Messenger location attachment), WGS 84 degrees."""

    lat: float
    lon: float


@dataclass(frozen=True)
class CalendarReply:
    """A citizen's calendar answering an invitation (an iTIP REPLY, RFC 5546 §3.2.3), free of iCalendar syntax.

    `uid` and `sequence` name the invitation and the version of it that is answered;
    `attendee` is the address that answers (a bare address, no "mailto:"); `answer` is what
    the citizen chose in the calendar.
    """

    uid: str
    sequence: int
    attendee: str
    answer: Literal["accepted", "declined", "tentative"]


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
    `location`: a place the citizen shared, on channels that can share one.
    `calendar_reply`: the citizen's calendar answered an invitation (mail carrying an iTIP
    REPLY); None when the message carries none, or one that cannot be read.
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
    location: Location | None = None
    calendar_reply: CalendarReply | None = None


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
    """One message to send to one address; each adapter uses what its channel can carry.

    `subject`: on channels with a subject line (supports_subject), as are `html`, an HTML
    alternative to the text, and `headers`, extra header fields (List-Unsubscribe,
    Auto-Submitted: auto-generated for broadcasts).
    `choices`: buttons, on channels that have them (supports_choices; see Choice).
    `reply_to_ref`: the provider's id of what this answers: the comment to answer under, the
    mail replied to. None for a message that starts anew.
    `references`: the thread's earlier provider ids, oldest first (a mail's References).
    `message_id`: the id the message is to carry, where the sender chooses it (a mail's
    Message-ID, fixed when the reply was queued so a retry is the same message).
    `window_open`: False once the citizen's last message is older than the channel's
    reply_window; the adapter then writes as the provider still allows (Messenger: tagged as
    a person's answer) or refuses.
    `status_callback`: where the provider should report delivery (Webhook.status_reports).
    `automated`: an automatic answer (acknowledgement), marked so robots do not answer it.
    `sender_name`: who writes, where the channel shows a sender's name (a group chat: the group's).
    `attachments`: files with their bytes (a calendar entry), carried where mail is
    (supports_subject); other channels send the text alone. A calendar entry whose content
    type names an iTIP method (CALENDAR_METHOD_TYPE: "text/calendar; method=REQUEST") is a
    scheduling message, which mail carries so that calendars offer to accept or decline it.
    `language`: the language of the text ("de", "en"), for channels that pick a template by it.
    `unprompted`: the hub starts this message itself (a broadcast), it answers nothing; where
    such messages may only be approved templates (templates_outside_window), one is sent.
    `template`: an approved template (template_for) a person chose for this message; it is sent
    as that template whatever the window, `text` carrying its variable.
    `purpose`: what the message is for where a template carries it ("reminder", "feedback";
    see `template_for`); None: the account's template for notices.
    """

    to: str
    text: str
    subject: str | None = None
    reply_to_ref: str | None = None
    references: tuple[str, ...] = ()
    message_id: str | None = None
    window_open: bool = True
    status_callback: str | None = None
    automated: bool = False
    sender_name: str | None = None
    choices: tuple[Choice, ...] = ()
    html: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    attachments: tuple[Attachment, ...] = ()
    language: str | None = None
    unprompted: bool = False
    template: str | None = None
    purpose: str | None = None


# The content type of an iTIP message (RFC 5546) among an OutboundMessage's attachments.
CALENDAR_METHOD_TYPE = "text/calendar; method={method}"


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


class FileTooLarge(PermanentError):
    """An inbound file is larger than the caller takes (fetch_file's max_bytes)."""


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
    Adapters subclass this Protocol, so they inherit the no-op defaults of the optional hooks
    at its end.

    What the class declares, for callers that have only a kind:
    - `title`: the provider's name in the administration; `label`: the channel's name where
      staff read and write messages.
    - `identity`: the kind of address it reaches. `configuration`: its settings.
    - `webhook`: how the provider calls the hub, or None when nothing is called over HTTP;
      `receives_mail`: mail to its address arrives at the hub's SMTP listener or IMAP poll.
    - Capabilities: `max_body_chars`; `max_segments`, None unless the text is sent and paid
      in parts (SMS: then short texts are chosen); `supports_media`; `supports_choices`
      (buttons); `supports_subject` (a subject line, and with it what mail has: an HTML
      alternative, header fields, attached files, threading on message ids); `reply_window`, how long after
      the citizen's last message the channel may be written to unprompted (None: any time);
      `rate_per_second`, the provider's send limit per account.
    - `consent_source`: what a subscription made by writing on it records as its source
      ("keyword" where keywords are typed, the bot's flow where buttons are pressed).
    - `broadcast_rank`: which channel a broadcast takes first for a citizen reachable on
      several (lower first: free messengers before paid SMS, mail last).
    - `templates_outside_window`: outside the reply_window only the account's pre-approved
      templates go out (`template_for`), so a free-form reply there is refused before sending.
    - `opt_in_required`: the hub may write unprompted only to citizens who wrote on the channel
      first (their opt-in); having their kind of address (a phone number) is not enough.
    - `names_on_request`: the webhooks carry no sender's name, but the provider tells it when
      asked (`profile_name`), as Messenger's User Profile API does.
    """

    kind: ClassVar[str]
    title: ClassVar[str]
    label: ClassVar[str]
    identity: ClassVar[Identity]
    configuration: ClassVar[type[ChannelSettings]]
    webhook: ClassVar[Webhook | None]
    receives_mail: ClassVar[bool]
    max_body_chars: ClassVar[int]
    max_segments: ClassVar[int | None]
    supports_media: ClassVar[bool]
    supports_choices: ClassVar[bool]
    supports_subject: ClassVar[bool]
    reply_window: ClassVar[timedelta | None]
    rate_per_second: ClassVar[float]
    consent_source: ClassVar[str]
    broadcast_rank: ClassVar[int]
    templates_outside_window: ClassVar[bool] = False
    opt_in_required: ClassVar[bool] = False
    names_on_request: ClassVar[bool] = False
    # Who carries the data (DSGVO Art. 30); None where the town runs the system itself.
    processor: ClassVar[Processor | None] = None

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None: ...

    def verify(self, request: WebhookRequest) -> None:
        """Raise VerificationError unless the request carries the provider's valid signature."""
        ...

    def parse(self, request: WebhookRequest) -> list[InboundEvent]:
        """Turn a verified request into normalised events; raise PayloadError if unreadable."""
        ...

    def send(self, message: OutboundMessage) -> Receipt:
        """Send one message; raise TransientError, PermanentError or OptedOutError."""
        ...

    # Optional hooks: the defaults fit a provider that has no such thing.

    def verify_subscription(self, query: Mapping[str, str]) -> str:
        """Answer the webhook handshake (Webhook.handshake): the challenge to echo back."""
        raise VerificationError("Dieser Kanal kennt keinen Webhook-Handshake")

    def acknowledge_postback(self, ref: str) -> None:
        """Confirm a button press (InboundMessage.postback_ref) where the provider waits for that."""
        return None

    def fetch_file(self, url: str, *, max_bytes: int) -> bytes:
        """The bytes of an inbound Attachment that came as a provider reference (its `url`).

        Raises FileTooLarge when the provider's file is over `max_bytes` (nothing more is read),
        TransientError when the provider cannot be reached, PermanentError when the file is gone.
        """
        raise PermanentError("Dieser Kanal liefert keine Dateien nach")

    def profile_name(self, address: str) -> str | None:
        """The name the provider shows for a citizen's address (`names_on_request`), None if it has none.

        Raises TransientError or PermanentError when the provider cannot say.
        """
        return None

    def warm(self) -> None:
        """Build the SDK client the first send would build (and what it imports lazily); workers do it at start."""
        return None

    def check_credentials(self) -> bool:
        """Ask the provider, as cheaply as it allows and sending nothing, whether it accepts the account's credentials.

        True once it did; False where the provider has no such call. Raises PermanentError when
        it refuses them, TransientError when it cannot be reached.
        """
        return False

    @classmethod
    def segments(cls, text: str) -> tuple[int, str] | None:
        """How many parts `text` is sent and paid as, and in which encoding; None if it is not split."""
        return None

    @classmethod
    def new_message_id(cls, config: Mapping[str, Any]) -> str | None:
        """An id for a new outbound message where the sender chooses it (a mail's Message-ID)."""
        return None

    @classmethod
    def template_for(cls, config: Mapping[str, Any], language: str, purpose: str | None = None) -> str | None:
        """The account's approved template for texts in `language` (templates_outside_window), if one is set.

        `purpose` names a template of its own ("reminder", "feedback"); None is the one for notices.
        """
        return None

    @classmethod
    def daily_recipient_limit(cls, config: Mapping[str, Any]) -> int | None:
        """How many citizens the account may write to unprompted per moving 24 hours; None: no such limit."""
        return None


def window_open(adapter: type[ChannelAdapter], last_inbound_at: datetime | None, now: datetime) -> bool:
    """Whether the channel lets the hub write freely now: it has no reply_window, or the citizen wrote within it."""
    if adapter.reply_window is None:
        return True
    return last_inbound_at is not None and now - last_inbound_at < adapter.reply_window
