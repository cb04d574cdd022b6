"""Twilio SMS adapter: checks X-Twilio-Signature, reads inbound SMS and status callbacks, sends."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qs

import phonenumbers
import requests
from pydantic import SecretStr
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from channels.base import (
    N_,
    Attachment,
    ChannelAdapter,
    ChannelSettings,
    Identity,
    IgnoredEvent,
    InboundEvent,
    InboundMessage,
    OptedOutError,
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
    required_setting,
    setting,
)
from channels.registry import register
from channels.sms_segments import sms_segments

# The SDK logs every request's headers at INFO; no process that loads the adapter should.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)

DEFAULT_API_BASE_URL = "https://api.twilio.com"
# Twilio expects TwiML back; an empty Response sends no reply of its own.
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
DEFAULT_REGION = "DE"
SIGNATURE_HEADER = "x-twilio-signature"
# Twilio's API usually answers within a second; a hung connection must not block a worker.
SEND_TIMEOUT_SECONDS = 15.0

OPTED_OUT_CODE = 21610
TOO_MANY_REQUESTS_CODE = 20429

DeliveryStatus = Literal["sent", "delivered", "undelivered", "failed", "read"]
DELIVERY_STATUSES: dict[str, DeliveryStatus] = {
    "sent": "sent",
    "delivered": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "read": "read",
}
# A webhook whose MessageStatus is one of these is an inbound SMS, not a status callback.
INBOUND_STATUSES = frozenset({"received", "receiving"})


class TwilioForm(dict[str, list[str]]):
    """Form fields as `parse_qs` returns them, every value kept, blanks included.

    `RequestValidator` signs every value of a repeated field only if the mapping has
    `getall` (its MultiDict support); a plain dict of lists would make it fail.
    """

    def getall(self, name: str) -> list[str]:
        return self[name]

    def first(self, name: str) -> str | None:
        values = self.get(name)
        return values[0] if values else None

    @classmethod
    def from_body(cls, body: bytes) -> TwilioForm:
        """Parse a form-urlencoded UTF-8 body; raise PayloadError if it is neither."""
        try:
            text = body.decode("utf-8")
            fields = parse_qs(text, keep_blank_values=True, strict_parsing=True, errors="strict")
        except UnicodeDecodeError as exc:
            raise PayloadError(f"Formulardaten sind kein gültiges UTF-8: {exc.reason}") from exc
        except ValueError as exc:
            raise PayloadError(f"Formulardaten sind nicht lesbar: {exc}") from exc
        return cls(fields)


class RetryAfterKeepingHttpClient(TwilioHttpClient):
    """TwilioHttpClient that remembers, per thread, the Retry-After header of its last answer.

    TwilioRestException carries no response headers, so the header is read from here.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._last = threading.local()

    def request(self, *args: Any, **kwargs: Any) -> Response:
        self._last.retry_after = None
        response = super().request(*args, **kwargs)
        self._last.retry_after = (response.headers or {}).get("Retry-After")
        return response

    def last_retry_after(self) -> float | None:
        """Seconds from this thread's last Retry-After header; None if absent or an HTTP date."""
        header = getattr(self._last, "retry_after", None)
        if header is None:
            return None
        try:
            return float(header)
        except ValueError:
            return None


class TwilioSettings(ChannelSettings):
    """A Twilio sender number and the account it belongs to."""

    phone_number: str = setting(N_("Telefonnummer"), hint=N_("Mit Ländervorwahl, z. B. +4930123456"), address=True)
    account_sid: str = setting(N_("Account SID"))
    auth_token: SecretStr = setting(N_("Auth Token"))
    api_base_url: str | None = setting(N_("API-Adresse"), hint=N_("Leer lassen für Twilio selbst."), default=None)
    # Numbers written without +49 are read in this region; the hub sets the municipality's.
    default_region: str | None = setting(N_("Region für Nummern ohne Ländervorwahl"), default=None, on_form=False)


class TwilioMessagingAdapter(ChannelAdapter):
    """What every sender on Twilio's Programmable Messaging API shares: one account's credentials,
    the signed webhook with its status callbacks, and the SDK client pointed at `api_base_url`.

    The channels on it (SMS, WhatsApp) differ in what a message is; each reads one in `_inbound_message`.
    """

    # The name refusals of a missing setting give the channel ("Twilio-Kanal: …").
    provider_name: ClassVar[str] = "Twilio"

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        self._account_sid: str = required_setting(config, "account_sid", self.provider_name)
        self._phone_number: str = required_setting(config, "phone_number", self.provider_name)
        self._api_base_url: str | None = config.get("api_base_url") or None
        self._default_region: str = config.get("default_region") or DEFAULT_REGION
        self._auth_token: str = required_setting(secrets, "auth_token", self.provider_name)
        self._validator = RequestValidator(self._auth_token)
        self._client: Client | None = None
        self._http_client: RetryAfterKeepingHttpClient | None = None
        self._client_lock = threading.Lock()

    def __repr__(self) -> str:
        # Spelled out so that the auth token can never end up in a log through repr().
        return f"{type(self).__name__}(account_sid={self._account_sid!r}, phone_number={self._phone_number!r})"

    def verify(self, request: WebhookRequest) -> None:
        signature = request.header(SIGNATURE_HEADER)
        if not signature:
            raise VerificationError("X-Twilio-Signature fehlt")
        try:
            form = TwilioForm.from_body(request.body)
        except PayloadError as exc:
            raise VerificationError(f"X-Twilio-Signature nicht prüfbar: {exc}") from exc
        if not self._validator.validate(request.url, form, signature):
            raise VerificationError("X-Twilio-Signature stimmt nicht")

    def parse(self, request: WebhookRequest) -> list[InboundEvent]:
        form = TwilioForm.from_body(request.body)
        message_sid = form.first("MessageSid")
        if not message_sid:
            raise PayloadError("MessageSid fehlt")
        status = form.first("MessageStatus")
        if status is not None and status not in INBOUND_STATUSES:
            # A delivery report: sent, delivered, failed, and WhatsApp's own "read".
            return [_status_event(message_sid, status, form)]
        return [self._inbound_message(message_sid, form)]

    def _inbound_message(self, message_sid: str, form: TwilioForm) -> InboundMessage:
        raise NotImplementedError

    def warm(self) -> None:
        # The client imports its API version and the Messages resource on first access.
        client, _ = self._api_client()
        client.messages  # noqa: B018

    def check_credentials(self) -> bool:
        """Fetches the account itself: Twilio answers 401 (code 20003) to a wrong SID or auth token."""
        client, http_client = self._api_client()
        try:
            client.api.v2010.accounts(self._account_sid).fetch()
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _classify(exc, http_client.last_retry_after()) from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientError(f"{self.provider_name} nicht erreichbar: {type(exc).__name__}") from exc
        return True

    def _api_client(self) -> tuple[Client, RetryAfterKeepingHttpClient]:
        with self._client_lock:
            if self._client is None or self._http_client is None:
                http_client = RetryAfterKeepingHttpClient(timeout=SEND_TIMEOUT_SECONDS)
                client = Client(self._account_sid, self._auth_token, http_client=http_client)
                # The constructor falls back to TWILIO_EDGE/TWILIO_REGION from the environment,
                # which would rewrite the host and bypass api_base_url.
                client.edge = None
                client.region = None
                client.api.base_url = self._api_base_url or DEFAULT_API_BASE_URL
                if self._api_base_url:
                    # An emulator answers the Content API (WhatsApp's buttons) at the same address.
                    client.content.base_url = self._api_base_url
                self._client, self._http_client = client, http_client
            return self._client, self._http_client


@register
class TwilioSmsAdapter(TwilioMessagingAdapter):
    """SMS over Twilio's Programmable Messaging API, for one sender number."""

    kind: ClassVar[str] = "twilio"
    title: ClassVar[str] = N_("SMS (Twilio)")
    label: ClassVar[str] = N_("SMS")
    identity: ClassVar[Identity] = Identity(
        "phone", N_("Telefon"), N_("Telefonnummer mit Ländervorwahl, z. B. +491701234567")
    )
    configuration: ClassVar[type[ChannelSettings]] = TwilioSettings
    webhook: ClassVar[Webhook | None] = Webhook(TWIML_EMPTY, "application/xml", status_reports=True)
    processor: ClassVar[Processor | None] = Processor(
        "Twilio Ireland Ltd. / Twilio Inc.",
        N_("Auftragsverarbeiter (Art. 28 DSGVO): Versand und Empfang von SMS"),
        N_("Telefonnummer, Nachrichtentext, Zustellstatus"),
        N_("USA; Übermittlung nach EU-US Data Privacy Framework und Standardvertragsklauseln"),
    )
    receives_mail: ClassVar[bool] = False
    max_body_chars: ClassVar[int] = 1600
    max_segments: ClassVar[int | None] = 10
    supports_media: ClassVar[bool] = True
    supports_choices: ClassVar[bool] = False
    supports_subject: ClassVar[bool] = False
    reply_window: ClassVar[timedelta | None] = None
    # Twilio sends 10 segments per second per sender to countries outside +1, Germany included.
    rate_per_second: ClassVar[float] = 10.0
    consent_source: ClassVar[str] = "keyword"
    # Paid per segment: a broadcast takes SMS only for citizens no free messenger reaches.
    broadcast_rank: ClassVar[int] = 30

    def send(self, message: OutboundMessage) -> Receipt:
        if len(message.text) > self.max_body_chars:
            raise PermanentError(f"Nachricht hat {len(message.text)} Zeichen, erlaubt sind {self.max_body_chars}")
        to = _to_e164(message.to, self._default_region, require_valid=True)
        if to is None:
            raise PermanentError(f"Ungültige Telefonnummer: {message.to!r}")
        client, http_client = self._api_client()
        try:
            created = client.messages.create(
                to=to,
                from_=self._phone_number,
                body=message.text,
                status_callback=message.status_callback,
            )
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _classify(exc, http_client.last_retry_after()) from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientError(f"Twilio nicht erreichbar: {type(exc).__name__}") from exc
        segments, encoding = sms_segments(message.text)
        return Receipt(
            provider_id=str(created.sid),
            status=DELIVERY_STATUSES.get(str(created.status), "sent"),
            segments=segments,
            encoding=encoding,
        )

    @classmethod
    def segments(cls, text: str) -> tuple[int, str] | None:
        return sms_segments(text)

    def _inbound_message(self, message_sid: str, form: TwilioForm) -> InboundMessage:
        raw_sender = form.first("From")
        if not raw_sender:
            raise PayloadError("From fehlt")
        sender = _to_e164(raw_sender, self._default_region, require_valid=False)
        if sender is None:
            raise PayloadError(f"Absendernummer ungültig: {raw_sender!r}")
        return InboundMessage(
            provider_id=message_sid,
            sender=sender,
            recipient=form.first("To"),
            text=form.first("Body") or "",
            attachments=_media_attachments(form),
        )


def _status_event(message_sid: str, status: str, form: TwilioForm) -> InboundEvent:
    event_id = f"{message_sid}:{status}"
    delivery_status = DELIVERY_STATUSES.get(status)
    if delivery_status is None:
        return IgnoredEvent(event_id, reason=f"Zwischenstatus {status!r}: kein Versandergebnis")
    return StatusUpdate(
        provider_id=message_sid,
        status=delivery_status,
        error_code=form.first("ErrorCode") or None,
        error_message=form.first("ErrorMessage") or None,
        event_id=event_id,
    )


def _media_attachments(form: TwilioForm) -> tuple[Attachment, ...]:
    raw_count = form.first("NumMedia") or "0"
    try:
        count = int(raw_count)
    except ValueError:
        raise PayloadError(f"NumMedia ist keine Zahl: {raw_count!r}") from None
    attachments = []
    for index in range(count):
        url = form.first(f"MediaUrl{index}")
        if not url:
            raise PayloadError(f"MediaUrl{index} fehlt")
        content_type = form.first(f"MediaContentType{index}") or "application/octet-stream"
        attachments.append(Attachment(filename=None, content_type=content_type, url=url))
    return tuple(attachments)


def _classify(exc: TwilioRestException | TwilioServiceException, retry_after: float | None) -> Exception:
    status = int(exc.status)
    code = str(exc.code) if exc.code is not None else None
    if exc.code == OPTED_OUT_CODE:
        return OptedOutError("Empfänger hat SMS mit STOP abbestellt", code=code)
    if status == 429 or exc.code == TOO_MANY_REQUESTS_CODE:
        return TransientError("Twilio: zu viele Anfragen", code=code, retry_after=retry_after)
    if status >= 500:
        return TransientError(f"Twilio-Serverfehler (HTTP {status})", code=code, retry_after=retry_after)
    detail = exc.msg if isinstance(exc, TwilioRestException) else exc.detail or exc.title
    return PermanentError(f"Twilio lehnt ab (HTTP {status}): {detail}", code=code)


def _to_e164(raw: str, default_region: str, *, require_valid: bool) -> str | None:
    """The number in E.164 form, or None if it cannot be a phone number.

    Inbound numbers only need to be possible (new number ranges must not be turned away);
    outbound numbers must be valid so a typo is caught before it costs a send.
    """
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        return None
    usable = phonenumbers.is_valid_number(number) if require_valid else phonenumbers.is_possible_number(number)
    if not usable:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
