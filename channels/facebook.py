"""Facebook Page adapter: Messenger chats and Page comments in, Send API and comment replies out."""

from __future__ import annotations

import hashlib
import hmac
import json
import mimetypes
import posixpath
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import facebook
import requests
from pydantic import SecretStr

from channels.base import (
    N_,
    Attachment,
    ChannelAdapter,
    ChannelSettings,
    Choice,
    FileTooLarge,
    Identity,
    IgnoredEvent,
    InboundEvent,
    InboundMessage,
    Location,
    OptedOutError,
    OutboundMessage,
    PayloadError,
    PermanentError,
    Processor,
    Receipt,
    TransientError,
    VerificationError,
    Webhook,
    WebhookRequest,
    setting,
)
from channels.registry import register

DEFAULT_GRAPH_URL = "https://graph.facebook.com/"
DEFAULT_GRAPH_VERSION = "v19.0"
SIGNATURE_HEADER = "X-Hub-Signature-256"
LEGACY_SIGNATURE_HEADER = "X-Hub-Signature"
REQUEST_TIMEOUT_SECONDS = 15.0

# The keys every `messaging[]` item carries; the one remaining key names the event type.
_MESSAGING_ENVELOPE_KEYS = frozenset({"sender", "recipient", "timestamp"})

# Where Messenger attachments live: payload.url is a signed link on Meta's CDN that needs no
# token and expires after some days. Only these hosts (and the configured Graph URL's, for the
# sandbox or a proxy) are fetched, so that a payload can never make the hub call elsewhere.
CDN_HOST_SUFFIXES = (".fbcdn.net", ".fbsbx.com")
DOWNLOAD_CHUNK_BYTES = 64 * 1024

# Messenger attachment types that are files; templates, fallbacks (shared links) and the
# like are not downloadable media.
_FILE_ATTACHMENT_FALLBACK_TYPES = {
    "image": "image/jpeg",
    "video": "video/mp4",
    "audio": "audio/mp4",
    "file": "application/octet-stream",
}

# Graph error codes worth retrying: 2 "temporary issue, retry later", 4 app request limit,
# 17 user request limit, 32 page request limit, 613 calls exceeded the rate limit
# (developers.facebook.com/docs/graph-api/guides/error-handling, …/messenger-platform/error-codes).
_TRANSIENT_GRAPH_CODES = frozenset({2, 4, 17, 32, 613})
_PERSON_UNAVAILABLE = 551
_INVALID_TOKEN = 190
_PERMISSION_DENIED = 10
_OUTSIDE_ALLOWED_WINDOW = 2018278

# Quick reply limits (developers.facebook.com/docs/messenger-platform/reference/buttons/
# quick-replies): at most 13 per message, payloads of at most 1000 characters, titles of at
# most 20 characters (Messenger truncates longer ones). Titles are cut here, without an
# ellipsis, so that what is sent is exactly what Meta shows and echoes back as the tap's text;
# the adapter itself reads the payload of a tap, not its text.
MAX_QUICK_REPLIES = 13
MAX_QUICK_REPLY_TITLE_CHARS = 20
MAX_QUICK_REPLY_PAYLOAD_CHARS = 1000


class _GraphHTTPError(Exception):
    """The Graph API answered in a way facebook-sdk cannot report faithfully (5xx, non-JSON)."""

    def __init__(self, status: int, graph_code: int | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.graph_code = graph_code


class _GraphSession(requests.Session):
    """A session that sends facebook-sdk's calls to the configured Graph base URL.

    facebook-sdk builds every URL as `facebook.FACEBOOK_GRAPH_URL + path`; changing that module
    global would redirect every account in the process, so the prefix is swapped here instead.
    The session also raises `_GraphHTTPError` for a 5xx or a non-JSON answer: the SDK drops the
    HTTP status and reports such bodies only as "Maintype was not text, image, or querystring"
    (or a KeyError without a Content-Type), which would hide a retryable outage.
    """

    def __init__(self, graph_url: str) -> None:
        super().__init__()
        self._graph_url = graph_url if graph_url.endswith("/") else f"{graph_url}/"

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        sdk_prefix = facebook.FACEBOOK_GRAPH_URL
        if isinstance(url, str) and url.startswith(sdk_prefix):
            url = self._graph_url + url[len(sdk_prefix) :]
        response = super().request(method, url, *args, **kwargs)
        is_json = "json" in response.headers.get("Content-Type", "")
        if response.status_code >= 500 or not is_json:
            raise _GraphHTTPError(response.status_code, _graph_error_code(response, is_json))
        return response


def _graph_error_code(response: requests.Response, is_json: bool) -> int | None:
    if not is_json:
        return None
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, int) else None


def _from_epoch_ms(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return None


def _from_epoch_seconds(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    return None


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PayloadError(f"{where}: JSON-Objekt erwartet")
    return value


def _list(container: Mapping[str, Any], key: str, where: str) -> list[Any]:
    """container[key] if it is a JSON array; absent or null is an empty one."""
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(f"{where}.{key}: JSON-Array erwartet, {type(value).__name__} erhalten")
    return value


def _id_of(party: Any, where: str) -> str:
    """The `id` of a `sender` or `recipient` object, as text (Meta sends ids as strings)."""
    identifier = party.get("id") if isinstance(party, Mapping) else None
    if not isinstance(identifier, str | int) or isinstance(identifier, bool) or identifier == "":
        raise PayloadError(f"{where}.id fehlt")
    return str(identifier)


def _text_field(container: Mapping[str, Any], key: str, where: str) -> str:
    value = container.get(key)
    if not isinstance(value, str) or not value:
        raise PayloadError(f"{where}.{key} fehlt")
    return value


def _attachments(message: Mapping[str, Any]) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    for item in _list(message, "attachments", "message"):
        if not isinstance(item, Mapping):
            continue
        fallback_type = _FILE_ATTACHMENT_FALLBACK_TYPES.get(str(item.get("type")))
        payload = item.get("payload")
        url = payload.get("url") if isinstance(payload, Mapping) else None
        if fallback_type is None or not isinstance(url, str):
            continue
        path = urlsplit(url).path
        guessed, _ = mimetypes.guess_type(path)
        found.append(
            Attachment(
                filename=posixpath.basename(path) or None,
                content_type=guessed or fallback_type,
                url=url,
            )
        )
    return tuple(found)


def _location(message: Mapping[str, Any]) -> Location | None:
    """A location attachment: `{"type": "location", "payload": {"coordinates": {"lat": …, "long": …}}}`."""
    for item in _list(message, "attachments", "message"):
        payload = item.get("payload") if isinstance(item, Mapping) and item.get("type") == "location" else None
        coordinates = payload.get("coordinates") if isinstance(payload, Mapping) else None
        if isinstance(coordinates, Mapping):
            lat, lon = coordinates.get("lat"), coordinates.get("long")
            if isinstance(lat, int | float) and isinstance(lon, int | float):
                return Location(lat=float(lat), lon=float(lon))
    return None


class FacebookSettings(ChannelSettings):
    """A Page and the app that receives its webhooks; the verify token is the hub's own."""

    page_id: str = setting(N_("Seiten-ID"), address=True)
    app_secret: SecretStr = setting(N_("App-Geheimnis"))
    page_access_token: SecretStr = setting(N_("Seiten-Zugriffstoken"))
    graph_url: str | None = setting(N_("Graph-API-Adresse"), hint=N_("Leer lassen für Facebook selbst."), default=None)
    graph_version: str | None = setting(N_("Graph-API-Version"), default=None, on_form=False)
    verify_token: SecretStr = setting(N_("Prüf-Token (Verify Token)"), generated=True)


@register
class FacebookAdapter(ChannelAdapter):
    """One Facebook Page: Messenger conversations and comments on the Page's posts."""

    kind: ClassVar[str] = "facebook"
    title: ClassVar[str] = "Facebook"
    label: ClassVar[str] = "Facebook"
    processor: ClassVar[Processor | None] = Processor(
        "Meta Platforms Ireland Ltd.",
        N_("gemeinsam Verantwortlicher für die Facebook-Seite der Stadt (Art. 26 DSGVO)"),
        N_("seitenbezogene ID (PSID), Name, Nachrichtentext, Kommentare unter Beiträgen der Seite"),
        N_("EU (Irland) und USA; Übermittlung nach EU-US Data Privacy Framework"),
    )
    identity: ClassVar[Identity] = Identity("facebook", "Facebook", N_("Seitenbezogene ID (PSID) der Person"))
    configuration: ClassVar[type[ChannelSettings]] = FacebookSettings
    webhook: ClassVar[Webhook | None] = Webhook("EVENT_RECEIVED", "text/plain", handshake=True)
    receives_mail: ClassVar[bool] = False
    max_body_chars: ClassVar[int] = 2000
    max_segments: ClassVar[int | None] = None
    supports_media: ClassVar[bool] = True
    # Quick replies in Messenger; a comment reply drops them.
    supports_choices: ClassVar[bool] = True
    supports_subject: ClassVar[bool] = False
    # A standard message only within 24 hours of the citizen's last one; after that only a
    # person's answer, tagged HUMAN_AGENT, and never news (…/send-messages/message-tags).
    reply_window: ClassVar[timedelta | None] = timedelta(hours=24)
    consent_source: ClassVar[str] = "messenger"
    broadcast_rank: ClassVar[int] = 20
    # Meta allows 300 Send API calls/s per Page for text (10/s for audio and video) and a
    # daily budget of 200 calls per engaged user (developers.facebook.com/documentation/
    # business-messaging/messenger-platform/overview/rate-limiting). 40/s stays far below
    # both for a municipal Page and leaves room for the media limit and comment replies.
    rate_per_second: ClassVar[float] = 40.0
    # Messenger events carry only the PSID; the name comes from the User Profile API.
    names_on_request: ClassVar[bool] = True

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        self.page_id = str(config["page_id"])
        self._app_secret = str(secrets["app_secret"]).encode("utf-8")
        self._verify_token = str(secrets["verify_token"])
        graph_url = str(config.get("graph_url") or DEFAULT_GRAPH_URL)
        self._graph_host = urlsplit(graph_url).netloc
        self._graph = facebook.GraphAPI(
            access_token=str(secrets["page_access_token"]),
            timeout=REQUEST_TIMEOUT_SECONDS,
            session=_GraphSession(graph_url),
        )
        # The SDK's constructor only accepts its own list of versions ("2.8" … "3.1").
        self._graph.version = str(config.get("graph_version") or DEFAULT_GRAPH_VERSION)

    # --- inbound -------------------------------------------------------------------------

    def verify_subscription(self, query: Mapping[str, str]) -> str:
        """Answer Meta's GET handshake: return `hub.challenge` if the verify token matches."""
        token = query.get("hub.verify_token", "")
        if query.get("hub.mode") != "subscribe":
            raise VerificationError("hub.mode ist nicht 'subscribe'")
        if not hmac.compare_digest(token.encode("utf-8"), self._verify_token.encode("utf-8")):
            raise VerificationError("hub.verify_token stimmt nicht")
        challenge = query.get("hub.challenge")
        if not challenge:
            raise VerificationError("hub.challenge fehlt")
        return challenge

    def verify(self, request: WebhookRequest) -> None:
        header = request.header(SIGNATURE_HEADER)
        if header is None:
            if request.header(LEGACY_SIGNATURE_HEADER) is not None:
                raise VerificationError(
                    f"nur die veraltete SHA-1-Signatur ({LEGACY_SIGNATURE_HEADER}) gesendet; "
                    f"{SIGNATURE_HEADER} ist erforderlich"
                )
            raise VerificationError(f"Header {SIGNATURE_HEADER} fehlt")
        scheme, separator, received = header.strip().partition("=")
        if scheme.lower() != "sha256" or not separator or not received:
            raise VerificationError(f"{SIGNATURE_HEADER} hat nicht die Form sha256=<hex>")
        # Meta signs the body exactly as sent (non-ASCII escaped as \uXXXX): hash the raw bytes.
        expected = hmac.new(self._app_secret, request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode("ascii"), received.lower().encode("utf-8")):
            raise VerificationError(f"{SIGNATURE_HEADER} passt nicht zum Inhalt")

    def parse(self, request: WebhookRequest) -> list[InboundEvent]:
        try:
            payload = json.loads(request.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PayloadError(f"kein gültiges JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise PayloadError("JSON-Objekt erwartet")
        if payload.get("object") != "page":
            raise PayloadError(f"object ist {payload.get('object')!r}, erwartet 'page'")
        entries = payload.get("entry")
        if not isinstance(entries, list):
            raise PayloadError("entry fehlt oder ist keine Liste")

        events: list[InboundEvent] = []
        for entry in entries:
            entry = _object(entry, "entry[]")
            for item in _list(entry, "messaging", "entry[]"):
                events.append(self._messaging_event(_object(item, "messaging[]")))
            for change in _list(entry, "changes", "entry[]"):
                events.append(self._change_event(_object(change, "changes[]"), entry))
        return events

    def _messaging_event(self, item: Mapping[str, Any]) -> InboundEvent:
        sender = _id_of(item.get("sender"), "messaging[].sender")
        recipient = _id_of(item.get("recipient"), "messaging[].recipient")
        timestamp = item.get("timestamp")
        sent_at = _from_epoch_ms(timestamp)

        if "message" in item:
            message = _object(item["message"], "message")
            mid = _text_field(message, "mid", "message")
            if message.get("is_echo"):
                return IgnoredEvent(mid, "Echo einer Nachricht der Seite selbst")
            quick_reply = message.get("quick_reply")
            quick_reply_payload = quick_reply.get("payload") if isinstance(quick_reply, Mapping) else None
            reply_to = message.get("reply_to")
            replied_mid = reply_to.get("mid") if isinstance(reply_to, Mapping) else None
            return InboundMessage(
                provider_id=mid,
                sender=sender,
                recipient=recipient,
                text=str(quick_reply_payload or message.get("text") or ""),
                kind="postback" if quick_reply_payload else "message",
                sent_at=sent_at,
                attachments=_attachments(message),
                in_reply_to=(replied_mid,) if isinstance(replied_mid, str) else (),
                location=_location(message),
            )

        if "postback" in item:
            postback = _object(item["postback"], "postback")
            postback_mid = postback.get("mid")
            return InboundMessage(
                provider_id=postback_mid if isinstance(postback_mid, str) else f"postback:{sender}:{timestamp}",
                sender=sender,
                recipient=recipient,
                text=str(postback.get("payload") or ""),
                kind="postback",
                sent_at=sent_at,
            )

        if "message_edit" in item:
            edit = _object(item["message_edit"], "message_edit")
            mid = _text_field(edit, "mid", "message_edit")
            return InboundMessage(
                # Each edit is its own event; num_edit keeps a retried delivery a no-op.
                provider_id=f"{mid}:edited:{edit.get('num_edit')}",
                sender=sender,
                recipient=recipient,
                text=str(edit.get("text") or ""),
                kind="edit",
                sent_at=sent_at,
                in_reply_to=(mid,),
            )

        event_type = next((key for key in item if key not in _MESSAGING_ENVELOPE_KEYS), "unbekannt")
        return IgnoredEvent(
            f"{event_type}:{sender}:{timestamp}",
            f"Messenger-Ereignis {event_type!r} enthält keine Nachricht",
        )

    def _change_event(self, change: Mapping[str, Any], entry: Mapping[str, Any]) -> InboundEvent:
        field_name = change.get("field")
        value = change.get("value")
        if field_name != "feed" or not isinstance(value, Mapping):
            return IgnoredEvent(
                f"{field_name}:{entry.get('id')}:{entry.get('time')}",
                f"Seiten-Ereignis {field_name!r} wird nicht verarbeitet",
            )
        item = value.get("item")
        verb = value.get("verb")
        created_time = value.get("created_time")
        if item != "comment":
            reference = value.get("post_id") or value.get("comment_id") or entry.get("id")
            return IgnoredEvent(
                f"feed:{item}:{verb}:{reference}:{created_time}",
                f"Feed-Ereignis {item!r} ({verb}) ist kein Kommentar",
            )

        comment_id = _text_field(value, "comment_id", "feed.value")
        event_id = comment_id if verb == "add" else f"{comment_id}:{verb}:{created_time}"
        author = value.get("from")
        if isinstance(author, Mapping) and str(author.get("id")) == self.page_id:
            # The Page's own replies come back through the same webhook: answering them would loop.
            return IgnoredEvent(event_id, "Kommentar der Seite selbst")
        if verb not in ("add", "edited"):
            return IgnoredEvent(event_id, f"Kommentar-Ereignis {verb!r} wird nicht verarbeitet")

        if not isinstance(author, Mapping) or not author.get("id"):
            # Meta leaves out `from` when the app may not read the person's profile
            # (pages_read_user_content); failing the whole delivery would make Meta retry it.
            return IgnoredEvent(event_id, "Kommentar ohne Absender (fehlende Berechtigung?)")
        post_id = _text_field(value, "post_id", "feed.value")
        parent_id = value.get("parent_id")
        if verb == "edited":
            # An edit points at the comment it changes, so the hub can find the original.
            refers_to: tuple[str, ...] = (comment_id,)
        elif isinstance(parent_id, str) and parent_id != post_id:
            refers_to = (parent_id,)
        else:
            refers_to = ()
        name = author.get("name")
        return InboundMessage(
            provider_id=event_id,
            sender=str(author["id"]),
            sender_name=name if isinstance(name, str) else None,
            recipient=self.page_id,
            text=str(value.get("message") or ""),
            kind="comment" if verb == "add" else "edit",
            sent_at=_from_epoch_seconds(created_time),
            thread_key=f"post:{post_id}",
            reply_to_ref=comment_id,
            in_reply_to=refers_to,
        )

    # --- outbound ------------------------------------------------------------------------

    def send(self, message: OutboundMessage) -> Receipt:
        if not message.text:
            raise PermanentError("leere Nachricht kann nicht gesendet werden")
        if len(message.text) > self.max_body_chars:
            raise PermanentError(f"Text ist {len(message.text)} Zeichen lang, Facebook erlaubt {self.max_body_chars}")
        try:
            if message.reply_to_ref:
                # Comments have no buttons: choices are dropped here, not refused.
                return self._reply_to_comment(message.reply_to_ref, message.text)
            return self._send_direct_message(message)
        except facebook.GraphAPIError as exc:
            raise _classify_graph_error(exc) from exc
        except _GraphHTTPError as exc:
            raise _classify_http_error(exc) from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientError(f"Graph API nicht erreichbar ({type(exc).__name__})") from exc
        except requests.RequestException as exc:
            # E.g. a JSON content type with an unreadable body: the outcome is unknown, and
            # retrying could send the message twice.
            raise PermanentError(f"Graph API-Anfrage fehlgeschlagen ({type(exc).__name__})") from exc

    def check_credentials(self) -> bool:
        """GET /me with the page token: the Graph API answers the page, or error 190 for a token it refuses."""
        self._get_object("me")
        return True

    def profile_name(self, address: str) -> str | None:
        """First and last name from the User Profile API: GET /{PSID}?fields=first_name,last_name with the Page token.

        Meta answers only for people who wrote to the Page (or tapped "Get Started"), and with
        `{"first_name": …, "last_name": …, "id": PSID}` (developers.facebook.com/documentation/
        business-messaging/messenger-platform/identity/user-profile); either name may be missing.
        """
        profile = self._get_object(address, fields="first_name,last_name")
        parts = [profile.get(key) for key in ("first_name", "last_name")] if isinstance(profile, Mapping) else []
        return " ".join(part.strip() for part in parts if isinstance(part, str) and part.strip()) or None

    def _get_object(self, object_id: str, **fields: str) -> object:
        """A Graph API read with the page token, its errors mapped to the hub's three."""
        try:
            # get_object builds "{version}/{id}" itself and adds the token to the query.
            return self._graph.get_object(object_id, **fields)
        except facebook.GraphAPIError as exc:
            raise _classify_graph_error(exc) from exc
        except _GraphHTTPError as exc:
            raise _classify_http_error(exc) from exc
        except requests.RequestException as exc:
            raise TransientError(f"Graph API nicht erreichbar ({type(exc).__name__})") from exc

    def fetch_file(self, url: str, *, max_bytes: int) -> bytes:
        """An attachment's payload.url, read in chunks and abandoned once over `max_bytes`."""
        parts = urlsplit(url)
        on_cdn = parts.scheme == "https" and (parts.hostname or "").endswith(CDN_HOST_SUFFIXES)
        if not on_cdn and parts.netloc != self._graph_host:
            raise PermanentError(f"Keine Messenger-Datei: {parts.netloc or url[:40]!r}")
        try:
            # No redirects: a link may only lead to the host checked above.
            with requests.get(url, stream=True, timeout=REQUEST_TIMEOUT_SECONDS, allow_redirects=False) as response:
                if response.status_code >= 500:
                    raise TransientError(f"Messenger-Datei: HTTP {response.status_code}")
                if response.status_code != 200:
                    # 403 from the CDN: the link expired or was changed; 404: the file is gone.
                    raise PermanentError(f"Messenger-Datei: HTTP {response.status_code}")
                data = bytearray()
                for chunk in response.iter_content(DOWNLOAD_CHUNK_BYTES):
                    data += chunk
                    if len(data) > max_bytes:
                        raise FileTooLarge(f"Messenger-Datei ist größer als {max_bytes} Bytes")
                return bytes(data)
        except requests.RequestException as exc:
            raise TransientError(f"Messenger-Datei nicht erreichbar ({type(exc).__name__})") from exc

    def _reply_to_comment(self, comment_id: str, text: str) -> Receipt:
        # put_object builds "{version}/{comment_id}/comments" itself.
        result = self._graph.put_object(comment_id, "comments", message=text)
        return Receipt(provider_id=_result_field(result, "id"))

    def _send_direct_message(self, message: OutboundMessage) -> Receipt:
        body: dict[str, Any] = {"text": message.text}
        if message.choices:
            body["quick_replies"] = _quick_replies(message.choices)
        form = {
            "recipient": json.dumps({"id": message.to}),
            "message": json.dumps(body),
        }
        if message.window_open:
            form["messaging_type"] = "RESPONSE"
        else:
            # Outside the 24-hour window only a human may answer, for up to 7 days.
            form["messaging_type"] = "MESSAGE_TAG"
            form["tag"] = "HUMAN_AGENT"
        # request() does not prepend the version, unlike put_object().
        result = self._graph.request(f"{self._graph.version}/me/messages", post_args=form)
        return Receipt(provider_id=_result_field(result, "message_id"))


def _quick_replies(choices: Sequence[Choice]) -> list[dict[str, str]]:
    """The choices as Messenger text quick replies; PermanentError beyond Meta's limits."""
    if len(choices) > MAX_QUICK_REPLIES:
        raise PermanentError(f"{len(choices)} Schaltflächen, Messenger erlaubt höchstens {MAX_QUICK_REPLIES}")
    for choice in choices:
        if not 1 <= len(choice.payload) <= MAX_QUICK_REPLY_PAYLOAD_CHARS:
            raise PermanentError(
                f"Schaltfläche {choice.label!r}: Rückgabewert hat {len(choice.payload)} Zeichen, "
                f"Messenger erlaubt 1 bis {MAX_QUICK_REPLY_PAYLOAD_CHARS}"
            )
    return [
        {"content_type": "text", "title": choice.label[:MAX_QUICK_REPLY_TITLE_CHARS], "payload": choice.payload}
        for choice in choices
    ]


def _result_field(result: Any, key: str) -> str:
    value = result.get(key) if isinstance(result, Mapping) else None
    if not isinstance(value, str) or not value:
        # The message may have gone out; retrying could send it twice.
        raise PermanentError(f"Antwort der Graph API ohne {key}")
    return value


def _classify_graph_error(exc: facebook.GraphAPIError) -> PermanentError | TransientError:
    error = exc.result.get("error") if isinstance(exc.result, Mapping) else None
    subcode = error.get("error_subcode") if isinstance(error, Mapping) else None
    code = exc.code
    detail = f"Graph-Fehler {code}" + (f"/{subcode}" if subcode else "") + f": {exc.message}"
    code_text = str(code) if code is not None else None
    if code in _TRANSIENT_GRAPH_CODES:
        return TransientError(f"Facebook drosselt oder ist gestört ({detail})", code=code_text)
    if code == _PERSON_UNAVAILABLE:
        return OptedOutError(
            f"Person nicht erreichbar, hat die Seite vermutlich blockiert ({detail})",
            code=code_text,
        )
    if code == _PERMISSION_DENIED and subcode == _OUTSIDE_ALLOWED_WINDOW:
        return PermanentError(f"außerhalb des erlaubten Antwortfensters ({detail})", code=code_text)
    if code == _INVALID_TOKEN:
        return PermanentError("Seitentoken ungültig", code=code_text)
    return PermanentError(detail, code=code_text)


def _classify_http_error(exc: _GraphHTTPError) -> PermanentError | TransientError:
    code_text = str(exc.graph_code) if exc.graph_code is not None else None
    if exc.status >= 500 or exc.status == 429:
        return TransientError(f"Graph API antwortet mit HTTP {exc.status}", code=code_text or str(exc.status))
    return PermanentError(
        f"unerwartete Antwort der Graph API (HTTP {exc.status}, kein JSON)",
        code=str(exc.status),
    )
