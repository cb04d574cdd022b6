"""Telegram bot adapter: checks the webhook secret, reads Bot API updates, sends via PTB."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import warnings
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

from pydantic import SecretStr
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

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
    OptOut,
    OutboundMessage,
    PayloadError,
    PermanentError,
    Processor,
    Receipt,
    TransientError,
    VerificationError,
    Webhook,
    WebhookRequest,
    required_setting,
    setting,
)
from channels.registry import register

log = logging.getLogger(__name__)

DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"
# Files are served beside the methods: https://api.telegram.org/file/bot<token>/<file_path>,
# the file_path from getFile; a bot may download files of up to 20 MB (larger: "file is too big").
API_PATH_SUFFIX, FILE_PATH_SUFFIX = "/bot", "/file/bot"
SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 (a header name, not a secret)

# my_chat_member in a private chat means the user blocked or unblocked the bot; in a group, that
# the bot was added or removed. Blocking and removal become OptOut events with these reasons.
REASON_BOT_BLOCKED = "Bot vom Nutzer blockiert"
REASON_BOT_REMOVED = "Bot aus der Gruppe entfernt"
REASON_BOT_UNBLOCKED = "Bot vom Nutzer wieder freigegeben"
# The bot's statuses in which it can no longer write to the chat (a tuple: the status in a
# malformed update may be a list, which a set cannot look up).
GONE_STATUSES = ("kicked", "left")

# File-carrying message fields and the content type to assume when Telegram names none.
# Telegram sends an animation twice, as `animation` and as `document`, hence the skip below.
FILE_FIELDS: dict[str, str] = {
    "animation": "video/mp4",
    "document": "application/octet-stream",
    "audio": "audio/mpeg",
    "voice": "audio/ogg",
    "video": "video/mp4",
    "video_note": "video/mp4",
    "sticker": "image/webp",
}
PHOTO_CONTENT_TYPE = "image/jpeg"
FILE_URL_PREFIX = "tg-file:"

# Telegram's limit for an inline button's callback_data, counted in UTF-8 bytes.
MAX_CALLBACK_DATA_BYTES = 64
# Inline keyboard layout: when every label is short, buttons share rows of up to three
# ("Ja | Nein"), so a yes/no question stays compact; one longer label puts every button on a
# row of its own, because the client cuts off labels that do not fit their share of the row.
SHORT_LABEL_CHARS = 12
BUTTONS_PER_ROW = 3

T = TypeVar("T")


class TelegramSettings(ChannelSettings):
    """A bot from @BotFather; the secret for setWebhook is the hub's own."""

    bot_username: str = setting(N_("Name des Bots"), hint=N_("Ohne @, z. B. MusterstadtBot"), address=True)
    bot_token: SecretStr = setting(N_("Bot-Token"), hint=N_("Von @BotFather"))
    api_base_url: str | None = setting(N_("API-Adresse"), hint=N_("Leer lassen für Telegram selbst."), default=None)
    webhook_secret: SecretStr = setting(N_("Geheimnis für setWebhook (secret_token)"), generated=True)


@register
class TelegramAdapter(ChannelAdapter):
    """One Telegram bot, receiving updates by webhook and sending with sendMessage."""

    kind: ClassVar[str] = "telegram"
    title: ClassVar[str] = "Telegram"
    label: ClassVar[str] = "Telegram"
    processor: ClassVar[Processor | None] = Processor(
        "Telegram Messenger Inc.",
        N_("Betreiber des Messengers in eigener Verantwortung; die Stadt nutzt ihn über einen Bot"),
        N_("Chat-ID, Profilname, Nachrichtentext, Medien, geteilter Standort"),
        N_("außerhalb der EU (Vereinigte Arabische Emirate, weltweite Rechenzentren); kein Angemessenheitsbeschluss"),
    )
    identity: ClassVar[Identity] = Identity(
        "telegram", "Telegram", N_("Chat-ID der Person, die dem Bot geschrieben hat")
    )
    configuration: ClassVar[type[ChannelSettings]] = TelegramSettings
    webhook: ClassVar[Webhook | None] = Webhook('{"ok":true}', "application/json")
    receives_mail: ClassVar[bool] = False
    max_body_chars: ClassVar[int] = 4096
    max_segments: ClassVar[int | None] = None
    supports_media: ClassVar[bool] = True
    supports_choices: ClassVar[bool] = True
    supports_subject: ClassVar[bool] = False
    reply_window: ClassVar[timedelta | None] = None
    # Telegram's bulk limit across chats; a single chat tolerates about one message a second.
    rate_per_second: ClassVar[float] = 30.0
    consent_source: ClassVar[str] = "telegram"
    broadcast_rank: ClassVar[int] = 10

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, Any]) -> None:
        self._api_base_url: str = config.get("api_base_url") or DEFAULT_API_BASE_URL
        self.bot_username: str | None = config.get("bot_username")
        self._bot_token: str = required_setting(secrets, "bot_token", "Telegram")
        self._webhook_secret: str = required_setting(secrets, "webhook_secret", "Telegram")

    def __repr__(self) -> str:
        # Spelled out so that the token and secret can never end up in a log through repr().
        return f"TelegramAdapter(bot_username={self.bot_username!r})"

    def verify(self, request: WebhookRequest) -> None:
        secret = request.header(SECRET_HEADER)
        if not secret:
            raise VerificationError("X-Telegram-Bot-Api-Secret-Token fehlt")
        if not hmac.compare_digest(secret.encode("utf-8"), self._webhook_secret.encode("utf-8")):
            raise VerificationError("X-Telegram-Bot-Api-Secret-Token stimmt nicht")

    def parse(self, request: WebhookRequest) -> list[InboundEvent]:
        """Events keyed by what they are about (chat and message, button press, membership change).

        The update_id only orders the bot's queue: Telegram starts it again from a random number
        after a week without updates, so as a key it would drop new messages as retries. It stays
        in the raw body the hub keeps. Updates the hub ignores are keyed by it, as nothing is lost
        when two of those meet.
        """
        update = _load_update(request.body)
        update_type = next((key for key in update if key != "update_id"), None)
        if update_type is None:
            return [IgnoredEvent(f"update:{update['update_id']}", reason="Update ohne Inhalt")]
        handler = UPDATE_HANDLERS.get(update_type)
        if handler is not None:
            return [handler(update_type, _object(update, update_type))]
        known = "wird nicht verarbeitet" if update_type in IGNORED_UPDATE_TYPES else "ist unbekannt"
        return [IgnoredEvent(f"{update_type}:{update['update_id']}", reason=f"Update-Typ {update_type} {known}")]

    def send(self, message: OutboundMessage) -> Receipt:
        if not message.text.strip():
            raise PermanentError("Leere Nachricht kann nicht gesendet werden")
        if len(message.text) > self.max_body_chars:
            raise PermanentError(f"Nachricht hat {len(message.text)} Zeichen, erlaubt sind {self.max_body_chars}")
        keyboard = _inline_keyboard(message.choices)
        try:
            chat_id, message_id = _run(self._send_message(_chat_id(message.to), message.text, keyboard))
        except RetryAfter as exc:
            raise TransientError("Telegram: zu viele Nachrichten", code="429", retry_after=_retry_seconds(exc)) from exc
        except Forbidden as exc:
            raise OptedOutError(self._scrub(f"Telegram: {exc.message}"), code="403") from exc
        except InvalidToken as exc:
            raise PermanentError("Telegram lehnt das Bot-Token ab", code="401") from exc
        except ChatMigrated as exc:
            raise PermanentError(f"Gruppe wurde zur Supergruppe {exc.new_chat_id}; Chat-ID aktualisieren") from exc
        except BadRequest as exc:
            raise PermanentError(self._scrub(f"Telegram: {exc.message}"), code="400") from exc
        except NetworkError as exc:  # TimedOut is a NetworkError too
            raise TransientError(self._scrub(f"Telegram nicht erreichbar: {exc.message}")) from exc
        except TelegramError as exc:
            raise PermanentError(self._scrub(f"Telegram: {exc.message}")) from exc
        return Receipt(provider_id=f"{chat_id}:{message_id}", status="sent")

    def acknowledge_postback(self, ref: str) -> None:
        """Answer a button press (answerCallbackQuery with `ref`, the InboundMessage's postback_ref).

        Until this is called, the citizen's client shows a spinner on the button. Best effort:
        the press itself is already stored, and Telegram refuses answers to queries that are too
        old, so a failure (any TelegramError, network errors included) is logged, never raised.
        """
        try:
            _run(self._answer_callback_query(ref))
        except TelegramError as exc:
            log.warning("Telegram answerCallbackQuery %s failed: %s", ref, self._scrub(exc.message))

    def fetch_file(self, url: str, *, max_bytes: int) -> bytes:
        """A file of an update (FILE_URL_PREFIX + file_id): getFile, then the download from the file server."""
        if not url.startswith(FILE_URL_PREFIX):
            raise PermanentError(f"Keine Telegram-Datei: {url[:40]!r}")
        try:
            return bytes(_run(self._download(url.removeprefix(FILE_URL_PREFIX), max_bytes)))
        except FileTooLarge:
            raise
        except BadRequest as exc:  # "file is too big" (over 20 MB) or a file_id the bot cannot see
            too_big = "too big" in exc.message
            raise (FileTooLarge if too_big else PermanentError)(self._scrub(f"Telegram: {exc.message}")) from exc
        except NetworkError as exc:
            raise TransientError(self._scrub(f"Telegram nicht erreichbar: {exc.message}")) from exc
        except TelegramError as exc:
            raise PermanentError(self._scrub(f"Telegram: {exc.message}")) from exc

    async def _download(self, file_id: str, max_bytes: int) -> bytearray:
        file = await self._bot().get_file(file_id)
        if file.file_size is not None and file.file_size > max_bytes:
            raise FileTooLarge(f"Telegram-Datei hat {file.file_size} Bytes, erlaubt sind {max_bytes}")
        data = await file.download_as_bytearray()
        if len(data) > max_bytes:
            raise FileTooLarge(f"Telegram-Datei hat {len(data)} Bytes, erlaubt sind {max_bytes}")
        return data

    def check_credentials(self) -> bool:
        """getMe, the Bot API's own test of a token: 401 Unauthorized for one it does not know."""
        try:
            _run(self._get_me())
        except InvalidToken as exc:
            raise PermanentError("Telegram lehnt das Bot-Token ab", code="401") from exc
        except NetworkError as exc:
            raise TransientError(self._scrub(f"Telegram nicht erreichbar: {exc.message}")) from exc
        except TelegramError as exc:
            raise PermanentError(self._scrub(f"Telegram: {exc.message}")) from exc
        return True

    async def _get_me(self) -> None:
        await self._bot().get_me()

    def warm(self) -> None:
        # The shared loop's thread and the Bot with its HTTP pool stay for the life of the process.
        _run(self._build_bot())

    async def _build_bot(self) -> None:
        self._bot()

    def _bot(self) -> Bot:
        # Calling methods without Bot.initialize() saves the getMe round trip; PTB only
        # needs getMe for Bot.bot, and its failure message would contain the token.
        # Runs on the shared loop's thread only, so the cache needs no lock.
        key = (self._bot_token, self._api_base_url)
        bot = _bots.get(key)
        if bot is None:
            request = HTTPXRequest(connection_pool_size=POOL_SIZE)
            bot = Bot(
                self._bot_token, base_url=self._api_base_url, base_file_url=_file_base_url(self._api_base_url),
                request=request, get_updates_request=request,
            )  # fmt: skip
            _bots[key] = bot
        return bot

    async def _send_message(
        self, chat_id: int | str, text: str, keyboard: InlineKeyboardMarkup | None
    ) -> tuple[int, int]:
        sent = await self._bot().send_message(chat_id=chat_id, text=text, reply_markup=keyboard)
        return sent.chat.id, sent.message_id

    async def _answer_callback_query(self, callback_query_id: str) -> None:
        await self._bot().answer_callback_query(callback_query_id=callback_query_id)

    def _scrub(self, text: str) -> str:
        # httpx error texts may quote the request URL, and the URL holds the bot token.
        return text.replace(self._bot_token, "<bot_token>")


# One event loop in a daemon thread for every Telegram call of the process, and one Bot (with
# its pooled HTTP client) per bot token on it: a new loop and client per send cost a TCP
# connection and most of the CPU of a Telegram broadcast.
POOL_SIZE = 8
_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()
_bots: dict[tuple[str, str], Bot] = {}


def _file_base_url(api_base_url: str) -> str:
    """The file server beside an API base URL: "…/bot" becomes "…/file/bot" (Telegram, a local Bot API server)."""
    root = api_base_url.rstrip("/").removesuffix(API_PATH_SUFFIX)
    return f"{root}{FILE_PATH_SUFFIX}"


def _shared_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="telegram-loop", daemon=True).start()
        return _loop


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to completion from synchronous code, on the shared loop.

    Works from worker threads and from inside a running event loop (a FastAPI handler, say),
    since the coroutine runs on the loop's own thread; the caller waits for its result.
    """
    return asyncio.run_coroutine_threadsafe(coroutine, _shared_loop()).result()


def _retry_seconds(exc: RetryAfter) -> float:
    # PTB 22 warns that retry_after will become a timedelta; accept either form.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        retry_after = exc.retry_after
    if isinstance(retry_after, timedelta):
        return retry_after.total_seconds()
    return float(retry_after)


def _inline_keyboard(choices: Sequence[Choice]) -> InlineKeyboardMarkup | None:
    """The choices as inline buttons (see BUTTONS_PER_ROW); PermanentError for unusable payloads."""
    if not choices:
        return None
    for choice in choices:
        size = len(choice.payload.encode("utf-8"))
        if not 1 <= size <= MAX_CALLBACK_DATA_BYTES:
            raise PermanentError(
                f"Schaltfläche {choice.label!r}: Rückgabewert hat {size} Bytes, "
                f"Telegram erlaubt 1 bis {MAX_CALLBACK_DATA_BYTES}"
            )
    per_row = BUTTONS_PER_ROW if all(len(choice.label) <= SHORT_LABEL_CHARS for choice in choices) else 1
    buttons = [InlineKeyboardButton(text=choice.label, callback_data=choice.payload) for choice in choices]
    return InlineKeyboardMarkup([buttons[start : start + per_row] for start in range(0, len(buttons), per_row)])


def _chat_id(to: str) -> int | str:
    """Numeric chat ids (negative for groups) go as integers, "@channelname" as text."""
    try:
        return int(to)
    except ValueError:
        return to


def _load_update(body: bytes) -> dict[str, Any]:
    try:
        update = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"Telegram-Update ist kein gültiges JSON: {exc}") from exc
    if not isinstance(update, dict):
        raise PayloadError("Telegram-Update ist kein JSON-Objekt")
    if not isinstance(update.get("update_id"), int):
        raise PayloadError("update_id fehlt oder ist keine Zahl")
    return update


def _object(parent: Mapping[str, Any], key: str, path: str | None = None) -> dict[str, Any]:
    """parent[key] if it is a JSON object; `path` names it in the error, defaulting to `key`."""
    value = parent.get(key)
    if not isinstance(value, dict):
        raise PayloadError(f"{path or key} fehlt oder ist kein Objekt")
    return value


def _optional_object(parent: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
    """parent[key] if it is a JSON object, {} if absent or null; anything else is unreadable."""
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{path} ist kein Objekt")
    return value


def _integer(parent: Mapping[str, Any], key: str, path: str) -> int:
    value = parent.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise PayloadError(f"{path} fehlt oder ist keine Zahl")
    return value


def _identifier(value: Any, path: str) -> str:
    """A chat or query id as text; Telegram sends chat ids as numbers, query ids as text."""
    if not isinstance(value, int | str) or isinstance(value, bool) or value == "":
        raise PayloadError(f"{path} fehlt oder ist weder Zahl noch Text")
    return str(value)


def _is_shared(chat: Mapping[str, Any]) -> bool:
    # Anything but a private chat (group, supergroup, channel, or no type) counts as read by others.
    return chat.get("type") != "private"


def _message_event(update_type: str, message: dict[str, Any]) -> InboundEvent:
    author = _optional_object(message, "from", f"{update_type}.from")
    chat = _object(message, "chat", f"{update_type}.chat")
    chat_id = _identifier(chat.get("id"), f"{update_type}.chat.id")
    # Message ids count per chat and are never reused there; each edit is an event of its own.
    key = f"{chat_id}:{_integer(message, 'message_id', f'{update_type}.message_id')}"
    if update_type == "edited_message":
        key += f":edit:{_integer(message, 'edit_date', 'edited_message.edit_date')}"
    if author.get("is_bot"):
        return IgnoredEvent(key, reason=f"{update_type} von einem Bot")
    attachments = _attachments(message)
    sticker_emoji = _optional_object(message, "sticker", f"{update_type}.sticker").get("emoji")
    text = message.get("text") or message.get("caption") or sticker_emoji or ""
    if not isinstance(text, str):
        raise PayloadError(f"{update_type}.text ist kein Text")
    location = _location(message, update_type)
    if not text and not attachments and location is None:
        return IgnoredEvent(key, reason=f"{update_type} ohne Text, Datei oder Standort")
    timestamp = message.get("edit_date") or message.get("date")
    # A reply quotes the message it answers, from the same chat: its id as the bot's send reported it.
    replied = _optional_object(message, "reply_to_message", f"{update_type}.reply_to_message").get("message_id")
    return InboundMessage(
        provider_id=key,
        sender=chat_id,
        text=text,
        kind="edit" if update_type == "edited_message" else "message",
        sender_name=_sender_name(chat, author),
        sent_at=datetime.fromtimestamp(timestamp, UTC) if isinstance(timestamp, int) else None,
        language=_text_or_none(author.get("language_code")),
        attachments=attachments,
        shared_chat=_is_shared(chat),
        location=location,
        in_reply_to=(f"{chat_id}:{replied}",) if isinstance(replied, int) else (),
    )


def _location(message: Mapping[str, Any], update_type: str) -> Location | None:
    """A shared location, or a venue's (a place picked from the map's list), as the Bot API's Location object."""
    venue = _optional_object(message, "venue", f"{update_type}.venue")
    place = _optional_object(venue or message, "location", f"{update_type}.location")
    if not place:
        return None
    lat, lon = place.get("latitude"), place.get("longitude")
    if not all(isinstance(value, int | float) and not isinstance(value, bool) for value in (lat, lon)):
        raise PayloadError(f"{update_type}.location ohne Breite und Länge als Zahlen")
    return Location(lat=float(lat), lon=float(lon))  # type: ignore[arg-type]


def _callback_event(query: dict[str, Any]) -> InboundMessage:
    query_id = _identifier(query.get("id"), "callback_query.id")
    author = _optional_object(query, "from", "callback_query.from")
    message = _optional_object(query, "message", "callback_query.message")
    chat = _optional_object(message, "chat", "callback_query.message.chat")
    # Without the message (a button under an inline message) the answer goes to the user's own chat.
    chat_id = _identifier(chat.get("id", author.get("id")), "callback_query.from.id")
    data = query.get("data") or ""
    if not isinstance(data, str):
        raise PayloadError("callback_query.data ist kein Text")
    return InboundMessage(
        provider_id=f"callback:{query_id}",
        sender=chat_id,
        text=data,
        kind="postback",
        sender_name=_sender_name(chat, author),
        language=_text_or_none(author.get("language_code")),
        postback_ref=query_id,
        shared_chat=bool(chat) and _is_shared(chat),
    )


def _membership_event(change: dict[str, Any]) -> OptOut | IgnoredEvent:
    status = _optional_object(change, "new_chat_member", "my_chat_member.new_chat_member").get("status")
    chat = _object(change, "chat", "my_chat_member.chat")
    chat_id = _identifier(chat.get("id"), "my_chat_member.chat.id")
    key = f"member:{chat_id}:{_integer(change, 'date', 'my_chat_member.date')}:{status}"
    private = not _is_shared(chat)
    if status in GONE_STATUSES:
        return OptOut(key, sender=chat_id, reason=REASON_BOT_BLOCKED if private else REASON_BOT_REMOVED)
    if status == "member" and private:
        return IgnoredEvent(key, reason=REASON_BOT_UNBLOCKED)
    return IgnoredEvent(key, reason=f"Mitgliedsstatus des Bots geändert: {status}")


def _attachments(message: Mapping[str, Any]) -> tuple[Attachment, ...]:
    attachments: list[Attachment] = []
    photo_sizes = message.get("photo") or []
    if not isinstance(photo_sizes, list) or not all(isinstance(size, dict) for size in photo_sizes):
        raise PayloadError("photo ist keine Liste von Objekten")
    if photo_sizes:
        largest = max(photo_sizes, key=lambda size: _number(size.get("width")) * _number(size.get("height")))
        attachments.append(_file_attachment(largest, PHOTO_CONTENT_TYPE))
    for field, fallback_type in FILE_FIELDS.items():
        if field == "document" and "animation" in message:
            continue
        file = message.get(field)
        if isinstance(file, dict):
            attachments.append(_file_attachment(file, fallback_type))
    return tuple(attachments)


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _file_attachment(file: Mapping[str, Any], fallback_type: str) -> Attachment:
    file_id = file.get("file_id")
    if not isinstance(file_id, str) or not file_id:
        raise PayloadError("file_id einer Datei fehlt oder ist kein Text")
    return Attachment(
        filename=_text_or_none(file.get("file_name")),
        content_type=_text_or_none(file.get("mime_type")) or fallback_type,
        url=f"{FILE_URL_PREFIX}{file_id}",
        size=_number(file.get("file_size")) or None,
    )


def _sender_name(chat: Mapping[str, Any], author: Mapping[str, Any]) -> str | None:
    """The name of whom the hub answers: a group by its title (its contact is the group), else the person."""
    title = chat.get("title")
    if _is_shared(chat) and isinstance(title, str) and title:
        return title
    return _display_name(author)


def _display_name(user: Mapping[str, Any]) -> str | None:
    full_name = " ".join(part for part in (user.get("first_name"), user.get("last_name")) if isinstance(part, str))
    username = user.get("username")
    return full_name or (username if isinstance(username, str) else None)


# What each update type the hub reads becomes (Bot API "Update" object, one field per update).
UPDATE_HANDLERS: dict[str, Callable[[str, dict[str, Any]], InboundEvent]] = {
    "message": _message_event,
    "edited_message": _message_event,
    "callback_query": lambda _type, query: _callback_event(query),
    "my_chat_member": lambda _type, change: _membership_event(change),
}
# Update types a bot may be sent that carry nothing for a town hall's inbox (channels, inline
# mode, payments, polls, reactions, business accounts, other members' changes); kept as ignored.
# A type in neither table is new to the hub: also kept, and its reason says it is unknown.
IGNORED_UPDATE_TYPES = frozenset(
    {
        "channel_post", "edited_channel_post", "business_connection", "business_message",
        "edited_business_message", "deleted_business_messages", "message_reaction", "message_reaction_count",
        "inline_query", "chosen_inline_result", "shipping_query", "pre_checkout_query", "purchased_paid_media",
        "poll", "poll_answer", "chat_member", "chat_join_request", "chat_boost", "removed_chat_boost",
    }
)  # fmt: skip
