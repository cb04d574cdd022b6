"""The Telegram Bot API methods the hub uses, and the Updates Telegram POSTs to a bot's webhook."""

from __future__ import annotations

import asyncio
import json
import re
import time
import zlib
from collections.abc import Awaitable, Callable
from io import BytesIO
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image

from channels.sandbox.delivery import Delivery, deliver
from channels.sandbox.state import Account, CallbackQuery, SandboxState, bot_user_id, get_state
from channels.sandbox.wire import BadBody, read_params

router = APIRouter(tags=["telegram"])

MAX_TEXT_CHARS = 4096
MAX_CALLBACK_DATA_BYTES = 64
# Bots may download files of up to 20 MB (Bot API, getFile).
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
# Telegram marks every "/command" (optionally "@botname") that starts a word as bot_command.
BOT_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")

# Parameters PTB sends JSON-encoded inside a form field (it encodes every non-string value).
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "link_preview_options",
        "reply_parameters",
        "allowed_updates",
        "caption_entities",
    }
)

# What Telegram's front-end nginx answers when the Bot API backend is down.
_BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
    "</body>\r\n</html>\r\n"
)

Args = dict[str, Any]
Method = Callable[[SandboxState, Account, Args], Awaitable[Response]]


def tg_ok(result: Any, description: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": True, "result": result}
    if description:
        body["description"] = description
    return JSONResponse(body)


def tg_error(code: int, description: str, parameters: dict[str, Any] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=code)


def bot_username(account: Account) -> str:
    return str(account.config.get("bot_username") or f"sandbox{account.id}_bot")


def bot_user(account: Account) -> dict[str, Any]:
    username = bot_username(account)
    return {
        "id": bot_user_id(str(account.secrets["bot_token"])),
        "is_bot": True,
        "first_name": str(account.config.get("bot_name") or username),
        "username": username,
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }


def _optional(profile: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: profile[key] for key in keys if profile.get(key)}


def user_object(profile: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": profile["id"],
        "is_bot": False,
        "first_name": profile.get("first_name") or "Sandbox",
        **_optional(profile, "last_name", "username", "language_code"),
    }


def chat_object(profile: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": profile["id"],
        "first_name": profile.get("first_name") or "Sandbox",
        **_optional(profile, "last_name", "username"),
        "type": "private",
    }


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[dict[str, Any]]:
    """bot_command entities; offsets and lengths count UTF-16 code units, as Telegram's do."""
    return [
        {
            "offset": _utf16_len(text[: match.start()]),
            "length": _utf16_len(match.group()),
            "type": "bot_command",
        }
        for match in BOT_COMMAND.finditer(text)
    ]


def _decode_args(params: list[tuple[str, Any]]) -> Args:
    args: Args = {}
    for key, value in params:
        if key in _JSON_FIELDS and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise BadBody(f"can't parse {key} JSON object") from exc
        args[key] = value
    return args


def _callback_data(keyboard: dict[str, Any]) -> list[str]:
    """The callback_data of every button of an inline keyboard, row by row (URL buttons have none)."""
    rows = keyboard["inline_keyboard"]
    return [str(button["callback_data"]) for row in rows for button in row if "callback_data" in button]


def _chat_id(args: Args) -> int | None:
    raw = args.get("chat_id")
    try:
        return int(raw) if raw not in (None, "") else None
    except (TypeError, ValueError):
        return None


async def get_me(state: SandboxState, account: Account, args: Args) -> Response:
    return tg_ok(bot_user(account))


async def send_message(state: SandboxState, account: Account, args: Args) -> Response:
    token = str(account.secrets["bot_token"])
    if args.get("chat_id") in (None, ""):
        return tg_error(400, "Bad Request: chat_id is empty")
    chat_id = _chat_id(args)
    if chat_id is None:
        return tg_error(400, "Bad Request: chat not found")
    text = str(args.get("text") or "")
    if not text.strip():
        return tg_error(400, "Bad Request: message text is empty")
    if len(text) > MAX_TEXT_CHARS:
        return tg_error(400, "Bad Request: message is too long")
    reply_markup = args.get("reply_markup")
    # Only inline keyboards belong to the message; reply keyboards live in the client.
    keyboard = reply_markup if isinstance(reply_markup, dict) and "inline_keyboard" in reply_markup else None
    if keyboard and not all(
        1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES for data in _callback_data(keyboard)
    ):
        return tg_error(400, "Bad Request: BUTTON_DATA_INVALID")

    decision = state.decide("telegram", str(chat_id))
    if decision.latency_s:
        await asyncio.sleep(decision.latency_s)
    if decision.outcome == "rate_limit":
        return tg_error(429, "Too Many Requests: retry after 1", {"retry_after": 1})
    if decision.outcome == "server_error":
        return HTMLResponse(_BAD_GATEWAY_HTML, status_code=502)
    if state.is_blocked(token, chat_id):
        return tg_error(403, "Forbidden: bot was blocked by the user")
    if decision.outcome == "permanent":
        return tg_error(400, "Bad Request: chat not found")

    profile = state.chat_profile(token, chat_id) or {"id": chat_id}
    message: dict[str, Any] = {
        "message_id": state.next_message_id(token, chat_id),
        "from": bot_user(account),
        "chat": chat_object({**profile, "id": chat_id}),
        "date": int(time.time()),
        "text": text,
    }
    if args.get("entities"):
        message["entities"] = args["entities"]
    if keyboard:
        message["reply_markup"] = keyboard
        state.store_keyboard_message(token, chat_id, message)
    state.record(
        "telegram",
        str(chat_id),
        bot_username(account),
        text,
        provider_id=str(message["message_id"]),
        reply_markup=reply_markup,
    )
    return tg_ok(message)


async def answer_callback_query(state: SandboxState, account: Account, args: Args) -> Response:
    """Stops the spinner on the citizen's button; the sandbox keeps the answer for
    GET /sandbox/telegram/answered. Ids this bot was never sent get Telegram's 400."""
    text = args.get("text")
    # PTB sends booleans JSON-encoded, other clients may send them as JSON values.
    show_alert = str(args.get("show_alert")).lower() == "true"
    answered = state.answer_callback_query(
        str(account.secrets["bot_token"]),
        str(args.get("callback_query_id") or ""),
        str(text) if text else None,
        show_alert,
    )
    if not answered:
        return tg_error(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
    return tg_ok(True)


async def set_webhook(state: SandboxState, account: Account, args: Args) -> Response:
    url = str(args.get("url") or "")
    secret = str(args.get("secret_token") or "")
    if secret and not SECRET_TOKEN.match(secret):
        return tg_error(400, "Bad Request: secret token contains unallowed characters")
    if not url:
        return await delete_webhook(state, account, args)
    already = account.webhook_url == url and account.secrets.get("webhook_secret") == (secret or None)
    state.set_webhook(account.id, url, secret or None)
    return tg_ok(True, "Webhook is already set" if already else "Webhook was set")


async def delete_webhook(state: SandboxState, account: Account, args: Args) -> Response:
    had_webhook = bool(account.webhook_url)
    state.set_webhook(account.id, None, None)
    return tg_ok(True, "Webhook was deleted" if had_webhook else "Webhook is already deleted")


async def get_webhook_info(state: SandboxState, account: Account, args: Args) -> Response:
    info: dict[str, Any] = {
        "url": account.webhook_url or "",
        "has_custom_certificate": False,
        "pending_update_count": 0,
    }
    if account.webhook_url:
        info["max_connections"] = 40
    return tg_ok(info)


async def get_file(state: SandboxState, account: Account, args: Args) -> Response:
    """A File object whose file_path the bot downloads from /file/bot<token>/<file_path>."""
    stored = state.file(file_id=str(args.get("file_id") or ""))
    if stored is None:
        return tg_error(400, "Bad Request: invalid file_id")
    if len(stored.data) > MAX_DOWNLOAD_BYTES:
        return tg_error(400, "Bad Request: file is too big")
    return tg_ok(
        {
            "file_id": stored.file_id,
            "file_unique_id": stored.unique_id,
            "file_size": len(stored.data),
            "file_path": stored.path,
        }
    )


METHODS: dict[str, Method] = {
    "getme": get_me,
    "sendmessage": send_message,
    "answercallbackquery": answer_callback_query,
    "setwebhook": set_webhook,
    "deletewebhook": delete_webhook,
    "getwebhookinfo": get_webhook_info,
    "getfile": get_file,
}


@router.api_route("/bot{token}/{method}", methods=["GET", "POST"])
async def bot_method(token: str, method: str, request: Request, state: SandboxState = Depends(get_state)) -> Response:
    account = state.find_account("telegram", bot_token=token)
    if account is None:
        return tg_error(401, "Unauthorized")
    handler = METHODS.get(method.lower())
    if handler is None:
        return tg_error(404, "Not Found")
    try:
        args = _decode_args(await read_params(request))
    except BadBody as exc:
        return tg_error(400, f"Bad Request: {exc}")
    return await handler(state, account, args)


@router.get("/file/bot{token}/{file_path:path}")
async def download_file(token: str, file_path: str, state: SandboxState = Depends(get_state)) -> Response:
    """Telegram's file server: the bytes of a file_path that getFile handed out, for the bot's token only."""
    if state.find_account("telegram", bot_token=token) is None:
        return tg_error(401, "Unauthorized")
    stored = state.file(path=file_path)
    if stored is None:
        return tg_error(404, "Not Found")
    return Response(stored.data, media_type=stored.content_type)


def photo_sizes(state: SandboxState, data: bytes) -> list[dict[str, Any]]:
    """Keeps a photo a citizen sends; a message's `photo`, its one PhotoSize naming the file getFile finds."""
    stored = state.add_file(data, "image/jpeg", folder="photos", suffix=".jpg")
    with Image.open(BytesIO(data)) as image:
        width, height = image.size
    size = {"file_id": stored.file_id, "file_unique_id": stored.unique_id, "file_size": len(data)}
    return [{**size, "width": width, "height": height}]


# The citizen's side: Updates POSTed to the bot's webhook.


async def post_update(
    state: SandboxState, account: Account, field: str, payload: dict[str, Any]
) -> tuple[int, Delivery]:
    token = str(account.secrets["bot_token"])
    update_id = state.next_update_id(token)
    if not account.webhook_url:
        return update_id, Delivery(None, "no webhook is set for this bot (setWebhook)")
    body = json.dumps({"update_id": update_id, field: payload}, ensure_ascii=False)
    headers = {"Content-Type": "application/json"}
    secret = account.secrets.get("webhook_secret")
    if secret:
        headers["X-Telegram-Bot-Api-Secret-Token"] = str(secret)
    delivery = await deliver("POST", account.webhook_url, headers=headers, content=body.encode("utf-8"))
    return update_id, delivery


async def citizen_message(
    state: SandboxState, account: Account, profile: dict[str, Any], text: str, photo: bytes | None = None
) -> tuple[int, int, Delivery]:
    """A citizen writes to the bot in a private chat, the text a photo's caption if one is sent with it:
    (update_id, message_id, delivery)."""
    token = str(account.secrets["bot_token"])
    state.remember_chat(token, profile["id"], profile)
    message: dict[str, Any] = {
        "message_id": state.next_message_id(token, profile["id"]),
        "from": user_object(profile),
        "chat": chat_object(profile),
        "date": int(time.time()),
        "text": text,
    }
    entities = command_entities(text)
    if entities:
        message["entities"] = entities
    if photo is not None:
        message["photo"] = photo_sizes(state, photo)
        message["caption"] = message.pop("text")
        if entities:
            message["caption_entities"] = message.pop("entities")
    update_id, delivery = await post_update(state, account, "message", message)
    return update_id, message["message_id"], delivery


async def citizen_callback(
    state: SandboxState,
    account: Account,
    profile: dict[str, Any],
    data: str,
    message_id: int | None,
) -> tuple[int, str, Delivery]:
    """A citizen presses an inline button under a bot message: (update_id, query id, delivery).

    Raises LookupError if the chat has no such bot message with a keyboard, or if none of its
    buttons carries `data`: a citizen can only press the buttons the bot sent."""
    token = str(account.secrets["bot_token"])
    state.remember_chat(token, profile["id"], profile)
    message = state.keyboard_message(token, profile["id"], message_id)
    if message is None:
        raise LookupError("no bot message with an inline keyboard in this chat")
    offered = _callback_data(message["reply_markup"])
    if data not in offered:
        raise LookupError(f"message {message['message_id']} has no button {data!r}; its buttons carry {offered}")
    query_id = str(state.serial())
    # Stored before the update goes out: the hub may answer while still handling the webhook.
    state.add_callback_query(CallbackQuery(query_id, token, profile["id"], message["message_id"], data))
    query = {
        "id": query_id,
        "from": user_object(profile),
        "message": message,
        "chat_instance": str(zlib.crc32(f"{token}:{profile['id']}".encode())),
        "data": data,
    }
    update_id, delivery = await post_update(state, account, "callback_query", query)
    return update_id, query_id, delivery


async def citizen_block(
    state: SandboxState, account: Account, profile: dict[str, Any], blocked: bool
) -> tuple[int, Delivery]:
    """A citizen blocks (or unblocks) the bot: the my_chat_member update private chats get."""
    token = str(account.secrets["bot_token"])
    state.remember_chat(token, profile["id"], profile)
    state.set_blocked(token, profile["id"], blocked)
    bot = bot_user(account)
    kicked = {"user": bot, "status": "kicked", "until_date": 0}
    member = {"user": bot, "status": "member"}
    change = {
        "chat": chat_object(profile),
        "from": user_object(profile),
        "date": int(time.time()),
        "old_chat_member": member if blocked else kicked,
        "new_chat_member": kicked if blocked else member,
    }
    return await post_update(state, account, "my_chat_member", change)
