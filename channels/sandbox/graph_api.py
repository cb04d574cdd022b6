"""The Graph API calls the hub makes for a Facebook Page, and the Page webhooks Meta sends."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from channels.sandbox.delivery import Delivery, deliver
from channels.sandbox.state import Account, Comment, SandboxState, get_state
from channels.sandbox.wire import BadBody, Params, param, read_params

router = APIRouter(tags=["facebook"])

VERSION = re.compile(r"^v\d+\.\d+$")
MAX_TEXT_CHARS = 2000
MAX_QUICK_REPLIES = 13
MAX_QUICK_REPLY_PAYLOAD_CHARS = 1000
STANDARD_WINDOW_S = 24 * 3600
HUMAN_AGENT_WINDOW_S = 7 * 24 * 3600
PRIVATE_REPLY_WINDOW_S = 7 * 24 * 3600
MESSAGING_TYPES = ("RESPONSE", "UPDATE", "MESSAGE_TAG")
TAGS = ("CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE", "HUMAN_AGENT")
# Whether the Page's own comment replies come back through the feed webhook, as with Meta.
ECHO_SETTING = "echo_page_comments"


def graph_error(
    message: str,
    code: int,
    *,
    type_: str = "OAuthException",
    subcode: int | None = None,
    status: int = 400,
    transient: bool | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"message": message, "type": type_, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if transient is not None:
        error["is_transient"] = transient
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(15)
    headers = None
    if code == 190:
        headers = {"WWW-Authenticate": f'OAuth "Facebook Platform" "invalid_token" "{message}"'}
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _invalid_token() -> JSONResponse:
    return graph_error("Invalid OAuth access token.", 190)


def _unsupported(object_id: str, method: str = "post") -> JSONResponse:
    return graph_error(
        f"Unsupported {method} request. Object with ID '{object_id}' does not exist, cannot be loaded"
        " due to missing permissions, or does not support this operation. Please read the Graph"
        " API documentation at https://developers.facebook.com/docs/graph-api",
        100,
        type_="GraphMethodException",
        subcode=33,
    )


def _param_error(message: str, subcode: int | None = None) -> JSONResponse:
    return graph_error(f"(#100) {message}", 100, subcode=subcode)


def _outside_window() -> JSONResponse:
    return graph_error(
        "(#10) This message is sent outside of allowed window. Learn more about the new policy"
        " here: https://developers.facebook.com/docs/messenger-platform/policy-overview",
        10,
        subcode=2018278,
    )


def _no_matching_user() -> JSONResponse:
    return _param_error("No matching user found", subcode=2018001)


def _fault_response(outcome: str | None) -> JSONResponse | None:
    if outcome == "rate_limit":
        # Graph reports throttling as HTTP 400 with a rate-limit code, not as 429.
        return graph_error("(#613) Calls to this api have exceeded the rate limit.", 613)
    if outcome == "server_error":
        return graph_error(
            "An unexpected error has occurred. Please retry your request later.",
            2,
            status=500,
            transient=True,
        )
    return None


def _json_param(params: Params, key: str) -> Any:
    """Send API fields arrive as JSON text in form fields, or as objects in a JSON body."""
    value = param(params, key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return None
    return value


def _quick_replies(value: Any) -> tuple[dict[str, str], ...]:
    """message.quick_replies as {"title", "payload"} items; ValueError says what Graph would refuse.

    Only text quick replies are emulated (the hub sends no others), so the phone-number and
    email kinds are refused too. The messages are the sandbox's own, not Meta's verbatim.
    """
    if value is None:
        return ()
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_QUICK_REPLIES:
        raise ValueError(f"param message[quick_replies] must be an array of 1 to {MAX_QUICK_REPLIES} quick replies")
    items = []
    for index, reply in enumerate(value):
        where = f"message[quick_replies][{index}]"
        if not isinstance(reply, dict) or reply.get("content_type") != "text":
            raise ValueError(f'param {where}[content_type] must be "text" (the only kind the sandbox emulates)')
        title, payload = reply.get("title"), reply.get("payload")
        if not isinstance(title, str) or not title:
            raise ValueError(f"param {where}[title] must be a non-empty string")
        if not isinstance(payload, str | int) or not 1 <= len(str(payload)) <= MAX_QUICK_REPLY_PAYLOAD_CHARS:
            raise ValueError(f"param {where}[payload] must be 1 to {MAX_QUICK_REPLY_PAYLOAD_CHARS} characters")
        items.append({"title": title, "payload": str(payload)})
    return tuple(items)


def _page_name(account: Account) -> str:
    return str(account.config.get("page_name") or "Rathaus Sandbox")


def _page_for(state: SandboxState, params: Params) -> Account | None:
    token = param(params, "access_token")
    return state.find_account("facebook", page_access_token=token) if token else None


def _window_error(
    state: SandboxState, page_id: str, psid: str, messaging_type: str, tag: str | None
) -> JSONResponse | None:
    last = state.last_inbound(page_id, psid)
    if last is None:
        return _outside_window() if messaging_type != "MESSAGE_TAG" else _no_matching_user()
    age = time.time() - last
    if messaging_type in ("RESPONSE", "UPDATE"):
        allowed = age <= STANDARD_WINDOW_S
    elif tag == "HUMAN_AGENT":
        allowed = age <= HUMAN_AGENT_WINDOW_S
    else:
        allowed = True
    return None if allowed else _outside_window()


@router.get("/{version}/me")
async def me(version: str, request: Request, state: SandboxState = Depends(get_state)) -> JSONResponse:
    page = _page_for(state, await read_params(request))
    if page is None:
        return _invalid_token()
    return JSONResponse({"name": _page_name(page), "id": str(page.config["page_id"])})


@router.get("/{version}/{psid}")
async def user_profile(
    version: str, psid: str, request: Request, state: SandboxState = Depends(get_state)
) -> JSONResponse:
    """The User Profile API: a PSID's fields, for the Page the token belongs to, once the person wrote to it.

    Meta answers `{"first_name": …, "last_name": …, "id": PSID}` with the fields asked for (`fields`,
    comma-separated; `id` always); a PSID that never wrote to the Page is an object it may not load.
    """
    if not VERSION.match(version):
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    params = await read_params(request)
    page = _page_for(state, params)
    if page is None:
        return _invalid_token()
    page_id = str(page.config["page_id"])
    if state.last_inbound(page_id, psid) is None:
        return _unsupported(psid, "get")
    first_name, last_name = state.profile(page_id, psid) or ("", "")
    known = {"first_name": first_name, "last_name": last_name}
    asked = [name.strip() for name in str(param(params, "fields") or "").split(",") if name.strip()]
    # A field the sandbox has no value for is left out, as Meta leaves out what it may not share.
    return JSONResponse({"id": psid, **{name: known[name] for name in asked if known.get(name)}})


@router.post("/{version}/{node}/messages")
async def send_api(version: str, node: str, request: Request, state: SandboxState = Depends(get_state)) -> JSONResponse:
    if not VERSION.match(version):
        return graph_error(f"Unknown path components: /{version}/{node}/messages", 2500)
    try:
        params = await read_params(request)
    except BadBody:
        return _param_error("Invalid parameter")
    page = _page_for(state, params)
    if page is None:
        return _invalid_token()
    page_id = str(page.config["page_id"])
    if node not in ("me", page_id):
        return _unsupported(node)

    recipient = _json_param(params, "recipient")
    message = _json_param(params, "message")
    if not isinstance(recipient, dict) or not recipient:
        return _param_error("The parameter recipient is required")
    if not isinstance(message, dict) or not message:
        return _param_error("The parameter message is required")
    text = message.get("text")
    if not isinstance(text, str) or not text:
        return _param_error("Param message[text] must be a non-empty UTF-8 encoded string")
    if len(text) > MAX_TEXT_CHARS:
        return _param_error("Length of param message[text] must be less than or equal to 2000")
    try:
        quick_replies = _quick_replies(message.get("quick_replies"))
    except ValueError as exc:
        return _param_error(str(exc))
    messaging_type = str(param(params, "messaging_type") or "RESPONSE")
    if messaging_type not in MESSAGING_TYPES:
        return _param_error(
            f'Param messaging_type must be one of {{{", ".join(MESSAGING_TYPES)}}} - got "{messaging_type}".'
        )
    tag = param(params, "tag")
    if messaging_type == "MESSAGE_TAG" and tag not in TAGS:
        return _param_error(f'Param tag must be one of {{{", ".join(TAGS)}}} - got "{tag}".')

    comment: Comment | None = None
    if "comment_id" in recipient:
        # A private reply to a comment goes to the comment's author, once, within 7 days.
        comment = state.comment(str(recipient["comment_id"]))
        if comment is None or comment.page_id != page_id:
            return _no_matching_user()
        to = comment.from_id
    elif "id" in recipient:
        to = str(recipient["id"])
    else:
        return _param_error("Invalid parameter")

    decision = state.decide("facebook", to)
    if decision.latency_s:
        await asyncio.sleep(decision.latency_s)
    fault = _fault_response(decision.outcome)
    if fault is not None:
        return fault
    if not decision.ignore_window:
        if comment is not None:
            if time.time() - comment.created_time > PRIVATE_REPLY_WINDOW_S:
                return _outside_window()
        else:
            window_error = _window_error(state, page_id, to, messaging_type, tag)
            if window_error is not None:
                return window_error
    if decision.outcome == "permanent":
        return graph_error("(#551) This person isn't available right now.", 551, subcode=1545041)

    mid = new_mid()
    state.record(
        "facebook",
        to,
        page_id,
        text,
        provider_id=mid,
        reply_to_ref=comment.comment_id if comment else None,
        messaging_type=messaging_type,
        tag=str(tag) if tag else None,
        quick_replies=quick_replies,
    )
    return JSONResponse({"recipient_id": to, "message_id": mid})


@router.post("/{version}/{object_id}/comments")
async def reply_to_comment(
    version: str,
    object_id: str,
    request: Request,
    background: BackgroundTasks,
    state: SandboxState = Depends(get_state),
) -> JSONResponse:
    if not VERSION.match(version):
        return graph_error(f"Unknown path components: /{version}/{object_id}/comments", 2500)
    try:
        params = await read_params(request)
    except BadBody:
        return _param_error("Invalid parameter")
    page = _page_for(state, params)
    if page is None:
        return _invalid_token()
    page_id = str(page.config["page_id"])
    parent = state.comment(object_id)
    if parent is None or parent.page_id != page_id:
        return _unsupported(object_id)
    text = str(param(params, "message") or "")
    if not text:
        return _param_error("Missing message or attachment")

    decision = state.decide("facebook", parent.from_id)
    if decision.latency_s:
        await asyncio.sleep(decision.latency_s)
    fault = _fault_response(decision.outcome)
    if fault is not None:
        return fault
    if decision.outcome == "permanent":
        # What Graph says when the comment was deleted or hidden meanwhile.
        return _unsupported(object_id)

    reply = Comment(
        comment_id=new_comment_id(state, parent.post_id),
        page_id=page_id,
        post_id=parent.post_id,
        from_id=page_id,
        from_name=_page_name(page),
        created_time=int(time.time()),
    )
    state.add_comment(reply)
    state.record(
        "facebook",
        parent.from_id,
        page_id,
        text,
        provider_id=reply.comment_id,
        reply_to_ref=object_id,
    )
    if page.config.get(ECHO_SETTING, True):
        background.add_task(post_webhook, page, feed_change(reply, object_id, text))
    return JSONResponse({"id": reply.comment_id})


# Meta's CDN (scontent.xx.fbcdn.net): a Messenger attachment's payload.url is a signed link that
# needs no token; `oh` is the signature of the path, `oe` the hex Unix time the link expires.
CDN_PREFIX = "/fbcdn/v/t1.15752-9/"
CDN_LINK_SECONDS = 3 * 24 * 3600
_CDN_KEY = secrets.token_bytes(16)


def _cdn_signature(path: str, expires: str) -> str:
    return "03_" + hmac.new(_CDN_KEY, f"{path}:{expires}".encode(), hashlib.sha256).hexdigest()[:40]


def cdn_url(state: SandboxState, base_url: str, data: bytes, content_type: str = "image/jpeg") -> str:
    """Keeps a file a citizen sends and returns the CDN link a Messenger attachment carries."""
    stored = state.add_file(data, content_type, folder=CDN_PREFIX.strip("/"), suffix="_n.jpg")
    expires = format(int(time.time()) + CDN_LINK_SECONDS, "X")
    query = urlencode({"_nc_cat": "1", "ccb": "1-7", "oh": _cdn_signature(stored.path, expires), "oe": expires})
    return f"{base_url.rstrip('/')}/{stored.path}?{query}"


@router.get(CDN_PREFIX + "{name}")
async def cdn_file(name: str, oh: str = "", oe: str = "", state: SandboxState = Depends(get_state)) -> Response:
    """The file behind a CDN link: 403 for a wrong signature or an expired link, as the CDN answers."""
    path = CDN_PREFIX.strip("/") + "/" + name
    if not hmac.compare_digest(oh, _cdn_signature(path, oe)):
        return PlainTextResponse("Bad URL hash", status_code=403)
    if int(oe, 16) < time.time():
        return PlainTextResponse("URL signature expired", status_code=403)
    stored = state.file(path=path)
    if stored is None:
        return PlainTextResponse("Not Found", status_code=404)
    return Response(stored.data, media_type=stored.content_type)


@router.api_route("/{version}/{rest:path}", methods=["GET", "POST", "DELETE"])
async def unknown_graph_path(version: str, rest: str) -> JSONResponse:
    # facebook-sdk takes any JSON without "error" for success, so a plain 404 would hide typos.
    if not VERSION.match(version):
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    return graph_error(f"Unknown path components: /{rest}", 2500)


# Page webhooks (the citizen's side).


def new_mid() -> str:
    return "m_" + secrets.token_urlsafe(48)


def new_comment_id(state: SandboxState, post_id: str) -> str:
    """Comment ids are "<post object id>_<comment id>", the post object id being the part of the
    post id after the Page id."""
    return f"{post_id.rsplit('_', 1)[-1]}_{state.serial()}"


def encode_webhook(payload: dict[str, Any]) -> bytes:
    """Meta's serialisation: compact, and non-ASCII escaped as \\uXXXX. The signature covers
    exactly these bytes."""
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def signature_headers(app_secret: str, body: bytes) -> dict[str, str]:
    key = app_secret.encode("utf-8")
    return {
        "Content-Type": "application/json",
        "User-Agent": "facebookexternalua",
        "X-Hub-Signature": "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
    }


async def post_webhook(account: Account, payload: dict[str, Any]) -> Delivery:
    if not account.webhook_url:
        return Delivery(None, "no webhook_url is configured for this Page")
    body = encode_webhook(payload)
    headers = signature_headers(str(account.secrets["app_secret"]), body)
    return await deliver("POST", account.webhook_url, headers=headers, content=body)


def feed_change(comment: Comment, parent_id: str, message: str) -> dict[str, Any]:
    return {
        "object": "page",
        "entry": [
            {
                "id": comment.page_id,
                "time": comment.created_time,
                "changes": [
                    {
                        "field": "feed",
                        "value": {
                            "from": {"id": comment.from_id, "name": comment.from_name},
                            "post_id": comment.post_id,
                            "comment_id": comment.comment_id,
                            "parent_id": parent_id,
                            "created_time": comment.created_time,
                            "item": "comment",
                            "verb": "add",
                            "message": message,
                        },
                    }
                ],
            }
        ],
    }


async def citizen_message(
    state: SandboxState,
    account: Account,
    psid: str,
    text: str,
    quick_reply_payload: str | None = None,
    timestamp_ms: int | None = None,
    image_urls: tuple[str, ...] = (),
    name: tuple[str, str] | None = None,
) -> tuple[str, Delivery]:
    """A citizen writes to the Page in Messenger; this opens the 24-hour window from its time.

    `name` (first, last) is what the User Profile API answers for the citizen from now on.

    Tapping a quick reply is such a message too: Messenger sends the title as the text and the
    tapped reply's payload as message.quick_reply.payload. Photos (`image_urls`, see cdn_url)
    come as image attachments."""
    page_id = str(account.config["page_id"])
    timestamp = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    state.note_inbound(page_id, psid, timestamp / 1000)
    if name is not None:
        state.set_profile(page_id, psid, *name)
    mid = new_mid()
    message: dict[str, Any] = {"mid": mid, "text": text}
    if quick_reply_payload:
        message["quick_reply"] = {"payload": quick_reply_payload}
    if image_urls:
        message["attachments"] = [{"type": "image", "payload": {"url": url}} for url in image_urls]
    payload = {
        "object": "page",
        "entry": [
            {
                "id": page_id,
                "time": int(time.time() * 1000),
                "messaging": [
                    {
                        "sender": {"id": psid},
                        "recipient": {"id": page_id},
                        "timestamp": timestamp,
                        "message": message,
                    }
                ],
            }
        ],
    }
    return mid, await post_webhook(account, payload)


async def citizen_comment(
    state: SandboxState,
    account: Account,
    from_id: str,
    from_name: str,
    post_id: str,
    message: str,
    parent_id: str | None = None,
) -> tuple[str, Delivery]:
    """A citizen comments on a Page post (or answers a comment, given parent_id)."""
    page_id = str(account.config["page_id"])
    if "_" not in post_id:
        post_id = f"{page_id}_{post_id}"
    comment = Comment(
        comment_id=new_comment_id(state, post_id),
        page_id=page_id,
        post_id=post_id,
        from_id=from_id,
        from_name=from_name,
        created_time=int(time.time()),
    )
    state.add_comment(comment)
    payload = feed_change(comment, parent_id or post_id, message)
    return comment.comment_id, await post_webhook(account, payload)


async def verify_subscription(account: Account) -> bool:
    """Meta's subscription handshake: the webhook must echo hub.challenge for our verify token."""
    if not account.webhook_url:
        return False
    challenge = str(secrets.randbelow(9 * 10**9) + 10**9)
    delivery = await deliver(
        "GET",
        account.webhook_url,
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": str(account.secrets["verify_token"]),
            "hub.challenge": challenge,
        },
        timeout=3.0,
    )
    return delivery.status_code == 200 and delivery.response_text.strip() == challenge
