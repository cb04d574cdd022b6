"""WhatsApp through Twilio: signed webhooks, text/media/location/button messages, read receipts, templates.

A module of its own rather than a mode of the SMS adapter: the wire is the same (Twilio's
Messages resource, X-Twilio-Signature, status callbacks, so the helpers of channels/twilio_sms.py
are reused), but almost everything the hub asks of a channel differs: a 24-hour reply window
outside which only approved templates go out, buttons (Content API), read receipts, opt-in,
a daily limit of recipients, its own settings (templates per language, the sender's tier) and
its own kind, so that a town can run both and a broadcast can choose between them.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

import requests
from pydantic import SecretStr
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.rest import Client
from twilio.rest.content.v1.content import ContentList

from channels.base import (
    N_,
    ChannelSettings,
    Choice,
    Identity,
    InboundMessage,
    Location,
    OptedOutError,
    OutboundMessage,
    PayloadError,
    PermanentError,
    Processor,
    Receipt,
    TransientError,
    Webhook,
    setting,
)
from channels.registry import register
from channels.twilio_sms import (
    DELIVERY_STATUSES,
    TWIML_EMPTY,
    TwilioForm,
    TwilioMessagingAdapter,
    TwilioSmsAdapter,
    _classify,
    _media_attachments,
    _to_e164,
)

ADDRESS_PREFIX = "whatsapp:"
# A sender starts at 250 recipients of business-initiated messages per moving 24 hours; Meta
# raises it to 2,000, 10,000, 100,000 and unlimited (developers.facebook.com/documentation/
# business-messaging/whatsapp/messaging-limits).
DEFAULT_DAILY_RECIPIENTS = 250
# Session buttons: WhatsApp shows up to 3 reply buttons (titles of up to 20 characters), or a
# list of up to 10 rows (titles of up to 24) behind one button.
MAX_REPLY_BUTTONS = 3
MAX_LIST_ITEMS = 10
MAX_BUTTON_TITLE = 20
MAX_LIST_TITLE = 24
MAX_BUTTON_ID = 200
LIST_BUTTON = {"de": "Antwort wählen", "en": "Choose an answer"}

# Error codes Twilio gives for WhatsApp (twilio.com/docs/whatsapp/api/error-code-mapping).
OUTSIDE_WINDOW = 63016  # free-form message outside the 24-hour window (Meta 470): template needed
RATE_LIMITED = 63018  # Meta 429/471/1015: throughput or the messaging limit (tier) exceeded
INVALID_RECIPIENT = 63024  # Meta 1002/1026: the number has no WhatsApp
META_LIMITATION = 63032  # Meta 472: WhatsApp does not let this user be written to now
NO_CHANNEL_ADDRESS = 63003  # Twilio cannot find the To address on WhatsApp
INVALID_CONTENT = 63021  # media or template text WhatsApp refuses
OPTED_OUT = 21610
PERMANENT_CODES = {
    OUTSIDE_WINDOW: "außerhalb des 24-Stunden-Fensters, Antwort nur mit Vorlage möglich",
    INVALID_RECIPIENT: "die Nummer hat kein WhatsApp",
    NO_CHANNEL_ADDRESS: "die Nummer ist bei WhatsApp nicht zu finden",
    META_LIMITATION: "WhatsApp lässt Nachrichten an diese Person gerade nicht zu",
    INVALID_CONTENT: "WhatsApp lehnt den Inhalt ab",
}
WHITESPACE = re.compile(r"\s+")


class WhatsAppSettings(ChannelSettings):
    """A WhatsApp sender registered at Twilio, its approved templates and its messaging limit."""

    phone_number: str = setting(
        N_("WhatsApp-Nummer"), hint=N_("Die bei Twilio registrierte Nummer, z. B. +4930123456"), address=True
    )
    account_sid: str = setting(N_("Account SID"))
    auth_token: SecretStr = setting(N_("Auth Token"))
    template_de: str | None = setting(
        N_("Vorlage für Mitteilungen (Deutsch)"),
        hint=N_("Content SID (HX…) einer von WhatsApp freigegebenen Vorlage, deren Variable {{1}} den Text trägt."),
        default=None,
    )
    template_en: str | None = setting(
        N_("Vorlage für Mitteilungen (Englisch)"),
        hint=N_("Wie oben, für Empfänger, die Englisch gewählt haben."),
        default=None,
    )
    # WhatsApp approves a template for what it says: reminders and feedback requests are utility
    # messages of their own, not the notices' template.
    reminder_template_de: str | None = setting(
        N_("Vorlage für Terminerinnerungen (Deutsch)"),
        hint=N_("Content SID (HX…) der freigegebenen Vorlage für Terminerinnerungen; {{1}} trägt den Text."),
        default=None,
    )
    reminder_template_en: str | None = setting(
        N_("Vorlage für Terminerinnerungen (Englisch)"),
        hint=N_("Wie oben, für Empfänger, die Englisch gewählt haben."),
        default=None,
    )
    feedback_template_de: str | None = setting(
        N_("Vorlage für Bitten um Rückmeldung (Deutsch)"),
        hint=N_("Content SID (HX…) der freigegebenen Vorlage für Bitten um Rückmeldung; {{1}} trägt den Text."),
        default=None,
    )
    feedback_template_en: str | None = setting(
        N_("Vorlage für Bitten um Rückmeldung (Englisch)"),
        hint=N_("Wie oben, für Empfänger, die Englisch gewählt haben."),
        default=None,
    )
    daily_recipients: int | None = setting(
        N_("Empfänger pro Tag (Stufe bei Meta)"),
        hint=N_("250, 2000, 10000 oder 100000; 0 für unbegrenzt."),
        default=None,
    )
    api_base_url: str | None = setting(N_("API-Adresse"), hint=N_("Leer lassen für Twilio selbst."), default=None)
    default_region: str | None = setting(N_("Region für Nummern ohne Ländervorwahl"), default=None, on_form=False)


@register
class WhatsAppAdapter(TwilioMessagingAdapter):
    """One WhatsApp sender over Twilio's Programmable Messaging API (addresses `whatsapp:+49…`)."""

    kind: ClassVar[str] = "whatsapp"
    title: ClassVar[str] = N_("WhatsApp (Twilio)")
    label: ClassVar[str] = "WhatsApp"
    # The phone number, as for SMS: a citizen known by number is one contact on both.
    identity: ClassVar[Identity] = TwilioSmsAdapter.identity
    processor: ClassVar[Processor | None] = Processor(
        "Twilio Inc.; WhatsApp Ireland Ltd. (Meta)",
        N_("Twilio als Auftragsverarbeiter; WhatsApp (Meta) als Betreiber des Messengers"),
        N_("Telefonnummer, Nachrichtentext, Medien, geteilter Standort, Zustellstatus"),
        N_("EU (Irland) und USA; Übermittlung nach EU-US Data Privacy Framework und Standardvertragsklauseln"),
    )
    configuration: ClassVar[type[ChannelSettings]] = WhatsAppSettings
    webhook: ClassVar[Webhook | None] = Webhook(TWIML_EMPTY, "application/xml", status_reports=True)
    receives_mail: ClassVar[bool] = False
    # Twilio's limit for a WhatsApp Body (WhatsApp itself would take 4096).
    max_body_chars: ClassVar[int] = 1600
    max_segments: ClassVar[int | None] = None
    supports_media: ClassVar[bool] = True
    supports_choices: ClassVar[bool] = True
    supports_subject: ClassVar[bool] = False
    reply_window: ClassVar[timedelta | None] = timedelta(hours=24)
    templates_outside_window: ClassVar[bool] = True
    opt_in_required: ClassVar[bool] = True
    # Twilio's default text throughput per WhatsApp sender (up to 50 on request; media 1.5).
    rate_per_second: ClassVar[float] = 10.0
    consent_source: ClassVar[str] = "whatsapp"
    # Templates are paid per message, like SMS, but cheaper: after the free messengers, before SMS.
    broadcast_rank: ClassVar[int] = 25
    provider_name: ClassVar[str] = "WhatsApp"

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        super().__init__(config, secrets)
        self._phone_number = _bare(self._phone_number)
        self._config = config

    @classmethod
    def template_for(cls, config: Mapping[str, Any], language: str, purpose: str | None = None) -> str | None:
        value = config.get(f"{purpose}_template_{language}" if purpose else f"template_{language}")
        return str(value) if value else None

    @classmethod
    def daily_recipient_limit(cls, config: Mapping[str, Any]) -> int | None:
        value = config.get("daily_recipients")
        if value in (None, ""):
            return DEFAULT_DAILY_RECIPIENTS
        return int(value) or None

    # --- inbound -------------------------------------------------------------------------

    def _inbound_message(self, message_sid: str, form: TwilioForm) -> InboundMessage:
        raw_sender = form.first("From")
        if not raw_sender:
            raise PayloadError("From fehlt")
        sender = _to_e164(_bare(raw_sender), self._default_region, require_valid=False)
        if sender is None:
            raise PayloadError(f"Absendernummer ungültig: {raw_sender!r}")
        recipient = form.first("To")
        common: dict[str, Any] = {
            "provider_id": message_sid,
            "sender": sender,
            "recipient": _bare(recipient) if recipient else None,
            "sender_name": form.first("ProfileName") or None,
        }
        # A press on a quick-reply button or a list row: the payload is the answer.
        payload = form.first("ButtonPayload") or form.first("ListId")
        if payload:
            return InboundMessage(**common, text=payload, kind="postback")
        text = form.first("Body") or ""
        place = _place(form)
        if place:
            text = f"{text}\n{place}".strip()
        location = Location(float(form.first("Latitude") or 0), float(form.first("Longitude") or 0)) if place else None
        return InboundMessage(**common, text=text, attachments=_media_attachments(form), location=location)

    # --- outbound ------------------------------------------------------------------------

    def send(self, message: OutboundMessage) -> Receipt:
        if len(message.text) > self.max_body_chars:
            raise PermanentError(f"Nachricht hat {len(message.text)} Zeichen, erlaubt sind {self.max_body_chars}")
        if not message.text.strip():
            raise PermanentError("Leere Nachricht kann nicht gesendet werden")
        to = _to_e164(_bare(message.to), self._default_region, require_valid=True)
        if to is None:
            raise PermanentError(f"Ungültige Telefonnummer: {message.to!r}")
        client, http_client = self._api_client()
        fields: dict[str, Any] = {
            "to": ADDRESS_PREFIX + to,
            "from_": ADDRESS_PREFIX + self._phone_number,
            "status_callback": message.status_callback,
        }
        try:
            if message.template is None and message.window_open and not message.unprompted:
                if message.choices:
                    fields["content_sid"] = self._buttons(client, message.text, message.choices, message.language)
                else:
                    fields["body"] = message.text
            else:
                # The template a clerk chose, or, outside the window and for what the hub starts
                # itself, the account's one for the language and purpose: only approved templates
                # may go out there; their one variable carries the text.
                fields["content_sid"] = message.template or self._template(message.language, message.purpose)
                fields["content_variables"] = json.dumps({"1": _one_line(message.text)}, ensure_ascii=False)
            created = client.messages.create(**fields)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _classify_whatsapp(exc, http_client.last_retry_after()) from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientError(f"Twilio nicht erreichbar: {type(exc).__name__}") from exc
        return Receipt(provider_id=str(created.sid), status=DELIVERY_STATUSES.get(str(created.status), "sent"))

    def _template(self, language: str | None, purpose: str | None) -> str:
        sid = self.template_for(self._config, language or "de", purpose) or self.template_for(
            self._config, "de", purpose
        )
        if not sid:
            raise PermanentError("Antwort nur mit Vorlage möglich: für WhatsApp ist keine Vorlage eingetragen")
        return sid

    def _buttons(self, client: Client, text: str, choices: Sequence[Choice], language: str | None) -> str:
        """A Content API item showing the choices as reply buttons (or a list), made once per text and choices."""
        if len(choices) > MAX_LIST_ITEMS:
            raise PermanentError(f"{len(choices)} Schaltflächen, WhatsApp erlaubt höchstens {MAX_LIST_ITEMS}")
        for choice in choices:
            if not 1 <= len(choice.payload) <= MAX_BUTTON_ID:
                raise PermanentError(
                    f"Schaltfläche {choice.label!r}: Rückgabewert hat {len(choice.payload)} Zeichen, "
                    f"WhatsApp erlaubt 1 bis {MAX_BUTTON_ID}"
                )
        if len(choices) <= MAX_REPLY_BUTTONS:
            actions = [{"title": c.label[:MAX_BUTTON_TITLE], "id": c.payload} for c in choices]
            types: dict[str, Any] = {"twilio/quick-reply": {"body": text, "actions": actions}}
        else:
            items = [{"item": c.label[:MAX_LIST_TITLE], "id": c.payload} for c in choices]
            button = LIST_BUTTON.get(language or "de", LIST_BUTTON["de"])
            types = {"twilio/list-picker": {"body": text, "button": button, "items": items}}
        key = hashlib.sha256(json.dumps([self._account_sid, types], sort_keys=True).encode()).hexdigest()
        with _contents_lock:
            known = _contents.get(key)
        if known:
            return known
        request = ContentList.ContentCreateRequest(
            {"friendly_name": f"rathaus_{key[:24]}", "language": language or "de", "types": types}
        )
        sid = str(client.content.v1.contents.create(request).sid)
        with _contents_lock:
            _contents[key] = sid
        return sid


# Buttons made through the Content API, by account and content: a survey sent to thousands makes one.
_contents: dict[str, str] = {}
_contents_lock = threading.Lock()


def _bare(address: str) -> str:
    """The number without Twilio's channel prefix ("whatsapp:+49…" -> "+49…")."""
    address = address.strip()
    return address[len(ADDRESS_PREFIX) :] if address.lower().startswith(ADDRESS_PREFIX) else address


def _one_line(text: str) -> str:
    # WhatsApp refuses template variables with line breaks, tabs or runs of spaces.
    return WHITESPACE.sub(" ", text).strip()


def _place(form: TwilioForm) -> str | None:
    """A shared location as text staff can read and open: name, address and a map link."""
    latitude, longitude = form.first("Latitude"), form.first("Longitude")
    if not latitude or not longitude:
        return None
    try:
        lat, lon = float(latitude), float(longitude)
    except ValueError:
        raise PayloadError(f"Standort nicht lesbar: {latitude!r}, {longitude!r}") from None
    named = ", ".join(part for part in (form.first("Label"), form.first("Address")) if part)
    link = f"https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={lon:.6f}#map=18/{lat:.6f}/{lon:.6f}"
    return f"Standort: {named + ' – ' if named else ''}{lat:.6f}, {lon:.6f} {link}"


def _classify_whatsapp(exc: TwilioRestException | TwilioServiceException, retry_after: float | None) -> Exception:
    code = exc.code if isinstance(exc.code, int) else None
    if code == OPTED_OUT:
        return OptedOutError("Empfänger hat WhatsApp-Nachrichten abbestellt", code=str(code))
    if code == RATE_LIMITED:
        return TransientError("WhatsApp: Sende- oder Tageslimit erreicht", code=str(code), retry_after=retry_after)
    if code in PERMANENT_CODES:
        return PermanentError(f"WhatsApp: {PERMANENT_CODES[code]}", code=str(code))
    return _classify(exc, retry_after)
