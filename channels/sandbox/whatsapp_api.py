"""Twilio's WhatsApp, wire-exact: Messages to `whatsapp:` addresses (window, templates, tier), Content API, webhooks.

Like Twilio, the Messages resource accepts a WhatsApp message with 201 and reports what WhatsApp
made of it by status callback: `failed` with 63016 for free-form text outside the 24-hour window
(or a template WhatsApp has not approved), 63018 when a business-initiated message would reach
one recipient more than the sender's messaging limit (account config `messaging_limit`, 250 by
default) allows in 24 hours, 63024 for a number without WhatsApp (the `permanent_to` fault).
Delivered messages are then reported `read`, WhatsApp's own status.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import mimetypes
import uuid
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from channels.sandbox.delivery import Delivery, deliver
from channels.sandbox.state import Account, Content, SandboxState, get_state, utcnow
from channels.sandbox.twilio_api import (
    API_VERSION,
    E164,
    WHATSAPP_PREFIX,
    _authenticated,
    _unauthorized,
    message_resource,
    new_sid,
    post_status_callbacks,
    sign,
    twilio_error,
)
from channels.sandbox.wire import BadBody, Params, every, param, read_params

router = APIRouter(tags=["whatsapp"])

WINDOW = timedelta(hours=24)
DEFAULT_MESSAGING_LIMIT = 250
MAX_BODY_CHARS = 1600
FAILURES = {
    63016: "Failed to send freeform message because you are outside the allowed window. "
    "If you are using WhatsApp, please use a Message Template.",
    63018: "Rate limit exceeded for Channel",
    63024: "Invalid message recipient",
}


def _bare(address: str) -> str:
    return address[len(WHATSAPP_PREFIX) :] if address.startswith(WHATSAPP_PREFIX) else address


def _messaging_limit(account: Account) -> int | None:
    value = account.config.get("messaging_limit", DEFAULT_MESSAGING_LIMIT)
    return int(value) if value else None


async def create_message(account_sid: str, form: Params, state: SandboxState) -> JSONResponse:
    """POST …/Messages.json with whatsapp: addresses (authenticated by the caller, twilio_api)."""
    to, from_ = str(param(form, "To") or ""), str(param(form, "From") or "")
    body = str(param(form, "Body") or "")
    media_urls = [str(u) for u in every(form, "MediaUrl")]
    content_sid = str(param(form, "ContentSid") or "") or None
    raw_variables = param(form, "ContentVariables")

    citizen = _bare(to)
    decision = state.decide("whatsapp", citizen)
    if decision.latency_s:
        await asyncio.sleep(decision.latency_s)
    if decision.outcome == "rate_limit":
        return twilio_error(429, 20429, "Too Many Requests")
    if decision.outcome == "server_error":
        return twilio_error(500, 20500, "Internal Server Error")

    if not to.startswith(WHATSAPP_PREFIX) or not E164.match(citizen):
        return twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    sender = state.find_account("whatsapp", account_sid=account_sid, phone_number=_bare(from_))
    if not from_.startswith(WHATSAPP_PREFIX) or sender is None:
        return twilio_error(400, 63007, "Twilio could not find a Channel with the specified From address")
    content: Content | None = None
    variables: dict[str, str] = {}
    if content_sid:
        content = state.content(content_sid)
        if content is None or content.account_sid != account_sid:
            return twilio_error(400, 21655, "The ContentSid is Invalid.")
        try:
            variables = _variables(raw_variables)
        except ValueError:
            return twilio_error(400, 21656, "The ContentVariables Parameter is invalid.")
    elif not body and not media_urls:
        return twilio_error(400, 21602, "Message body is required.")
    if len(body) > MAX_BODY_CHARS:
        return twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")

    hub_number = _bare(from_)
    now = utcnow()
    last = state.whatsapp_last_inbound(hub_number, citizen)
    in_window = decision.ignore_window or (last is not None and now - last < WINDOW)
    failure: int | None = None
    if decision.outcome == "permanent":
        failure = 63024
    elif not in_window and (content is None or not content.approved):
        failure = 63016
    elif not in_window and not state.take_initiated(
        hub_number, citizen, _messaging_limit(sender), now, WINDOW.total_seconds()
    ):
        failure = 63018

    sid = new_sid("MM" if media_urls else "SM")
    text = content.body(variables) if content is not None else body
    if failure is None:
        state.record(
            "whatsapp", citizen, hub_number, text, provider_id=sid, media_urls=tuple(media_urls),
            quick_replies=content.buttons() if content else (), content_sid=content_sid,
            content_variables=variables or None,
        )  # fmt: skip
    callback = param(form, "StatusCallback")
    if callback:
        base = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": account_sid,
            "From": from_,
            "To": to,
            "ApiVersion": API_VERSION,
            "ChannelPrefix": "whatsapp",
            "ChannelToAddress": citizen,
            "ChannelInstallSid": "XE" + uuid.uuid5(uuid.NAMESPACE_URL, hub_number).hex,
            "StructuredMessage": "false",
        }
        steps: list[dict[str, str]] = [{"MessageStatus": "sent"}, {"MessageStatus": "delivered"}]
        steps.append({"MessageStatus": "read"})
        if failure is not None:
            steps = [{"MessageStatus": "failed", "ErrorCode": str(failure), "ErrorMessage": FAILURES[failure]}]
        post_status_callbacks(
            str(callback), str(sender.secrets["auth_token"]), base,
            [{**step, "SmsStatus": step["MessageStatus"]} for step in steps],
        )  # fmt: skip
    return JSONResponse(
        message_resource(sid, account_sid, from_, to, text, len(media_urls), segments=1), status_code=201
    )


def _variables(raw: Any) -> dict[str, str]:
    if raw in (None, ""):
        return {}
    value = json.loads(str(raw))
    if not isinstance(value, dict):
        raise ValueError("ContentVariables must be a JSON object")
    return {str(key): str(item) for key, item in value.items()}


# The Content API (content.twilio.com/v1/Content): what buttons and templates are made of.


def _content_json(content: Content) -> dict[str, Any]:
    now = utcnow().isoformat()
    return {
        "sid": content.sid,
        "account_sid": content.account_sid,
        "friendly_name": content.friendly_name,
        "language": content.language,
        "variables": content.variables,
        "types": content.types,
        "date_created": now,
        "date_updated": now,
        "url": f"https://content.twilio.com/v1/Content/{content.sid}",
        "links": {"approval_create": f"https://content.twilio.com/v1/Content/{content.sid}/ApprovalRequests/whatsapp"},
    }


def _account_sid_of(request: Request, state: SandboxState) -> str | None:
    """The account a Content API call authenticates as (HTTP Basic, as for Messages), or None."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        user = base64.b64decode(encoded).decode("utf-8").partition(":")[0] if scheme.lower() == "basic" else ""
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user if user and _authenticated(request, user, state) else None


def new_content(state: SandboxState, account_sid: str, data: dict[str, Any], *, approved: bool = False) -> Content:
    types = data.get("types") if isinstance(data.get("types"), dict) else {}
    content = Content(
        sid="HX" + uuid.uuid4().hex,
        account_sid=account_sid,
        friendly_name=str(data.get("friendly_name") or ""),
        language=str(data.get("language") or "en"),
        # The SDK sends every content type, most of them null.
        types={name: spec for name, spec in (types or {}).items() if spec},
        variables={str(k): str(v) for k, v in (data.get("variables") or {}).items()},
        approved=approved,
    )
    state.add_content(content)
    return content


def register_templates(state: SandboxState, account: Account) -> None:
    """The approved templates an account registration names (config "templates": SID -> language, body)."""
    for sid, spec in (account.config.get("templates") or {}).items():
        types = {"twilio/text": {"body": str(spec.get("body") or "")}}
        content = Content(
            sid=str(sid), account_sid=str(account.config["account_sid"]), friendly_name=str(sid),
            language=str(spec.get("language") or "de"), types=types, variables={}, approved=True,
        )  # fmt: skip
        state.add_content(content)


@router.post("/v1/Content")
async def create_content(request: Request, state: SandboxState = Depends(get_state)) -> JSONResponse:
    account_sid = _account_sid_of(request, state)
    if account_sid is None:
        return _unauthorized()
    try:
        data = dict(await read_params(request))
    except BadBody:
        return twilio_error(400, 20001, "Invalid JSON body")
    if not data.get("types"):
        return twilio_error(400, 20001, "Missing required parameter types in the post body")
    return JSONResponse(_content_json(new_content(state, account_sid, data)), status_code=201)


@router.post("/v1/Content/{content_sid}/ApprovalRequests/whatsapp")
async def request_approval(
    content_sid: str, request: Request, state: SandboxState = Depends(get_state)
) -> JSONResponse:
    """WhatsApp's review, decided at once: the sandbox approves every template."""
    account_sid = _account_sid_of(request, state)
    if account_sid is None:
        return _unauthorized()
    data = dict(await read_params(request))
    content = state.approve_content(content_sid)
    if content is None or content.account_sid != account_sid:
        return twilio_error(404, 20404, f"The requested resource /v1/Content/{content_sid} was not found")
    return JSONResponse(
        {
            "name": str(data.get("name") or content.friendly_name),
            "category": str(data.get("category") or "UTILITY"),
            "content_type": next(iter(content.types), "twilio/text"),
            "status": "approved",
            "rejection_reason": "",
            "allow_category_change": True,
        },
        status_code=201,
    )


# Acting as a citizen


def inbound_params(
    account: Account,
    sid: str,
    citizen: str,
    *,
    body: str,
    profile_name: str,
    media_urls: list[str],
    location: tuple[float, float, str | None, str | None] | None,
    button: tuple[str, str] | None,
) -> dict[str, str]:
    """The form Twilio POSTs to the WhatsApp sender's webhook."""
    hub_number = str(account.config["phone_number"])
    message_type = "text"
    params: dict[str, str] = {
        "SmsMessageSid": sid,
        "NumMedia": str(len(media_urls)),
        "ProfileName": profile_name,
        "MessageType": "text",
        "SmsSid": sid,
        "WaId": citizen.lstrip("+"),
        "SmsStatus": "received",
        "Body": body,
        "To": WHATSAPP_PREFIX + hub_number,
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": sid,
        "AccountSid": str(account.config["account_sid"]),
        "From": WHATSAPP_PREFIX + citizen,
        "ApiVersion": API_VERSION,
    }
    for index, url in enumerate(media_urls):
        content_type = _media_type(url)
        params[f"MediaContentType{index}"] = content_type
        params[f"MediaUrl{index}"] = url
        major = content_type.split("/")[0]
        message_type = major if major in ("image", "audio", "video") else "document"
    if location is not None:
        latitude, longitude, label, address = location
        params.update(Latitude=str(latitude), Longitude=str(longitude))
        if label:
            params["Label"] = label
        if address:
            params["Address"] = address
        message_type = "location"
    if button is not None:
        params.update(ButtonPayload=button[0], ButtonText=button[1], Body=button[1])
        message_type = "button"
    params["MessageType"] = message_type
    return params


def _media_type(url: str) -> str:
    return mimetypes.guess_type(url)[0] or "image/jpeg"


async def send_inbound(
    state: SandboxState,
    account: Account,
    citizen: str,
    *,
    body: str = "",
    profile_name: str = "Erika Mustermann",
    media_urls: list[str] | None = None,
    location: tuple[float, float, str | None, str | None] | None = None,
    button: tuple[str, str] | None = None,
    hours_ago: float = 0.0,
) -> tuple[str, Delivery]:
    """A citizen writes to the town's WhatsApp number; this opens (or, `hours_ago`, opened) the window."""
    hub_number = str(account.config["phone_number"])
    state.note_whatsapp_inbound(hub_number, citizen, utcnow() - timedelta(hours=hours_ago))
    sid = new_sid("MM" if media_urls else "SM")
    if not account.webhook_url:
        return sid, Delivery(None, "no webhook_url is configured for this number")
    params = inbound_params(
        account, sid, citizen, body=body, profile_name=profile_name, media_urls=list(media_urls or []),
        location=location, button=button,
    )  # fmt: skip
    headers = {
        "X-Twilio-Signature": sign(str(account.secrets["auth_token"]), account.webhook_url, params),
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        "User-Agent": "TwilioProxy/1.1",
        "Accept": "*/*",
    }
    return sid, await deliver("POST", account.webhook_url, headers=headers, form=params)
