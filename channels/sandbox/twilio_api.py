"""Twilio's Messages REST resource, status callbacks and inbound SMS webhooks, wire-exact."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import mimetypes
import re
import time
import uuid
from email.utils import format_datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from twilio.request_validator import RequestValidator

from channels.sandbox.delivery import CALLBACK_CONNECTIONS, CallbackQueue, Delivery, deliver, deliver_sync
from channels.sandbox.state import Account, SandboxState, get_state, utcnow
from channels.sandbox.wire import BadBody, every, param, read_params
from channels.sms_segments import sms_segments

log = logging.getLogger(__name__)

router = APIRouter(tags=["twilio"])

API_VERSION = "2010-04-01"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
WHATSAPP_PREFIX = "whatsapp:"
MAX_BODY_CHARS = 1600

# Twilio's default keywords: only a message that is exactly one of these words counts.
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})

# Pause before each status callback: after the 201, as Twilio never reports the initial status.
CALLBACK_DELAY_S = 0.05
# Like Twilio's, status callbacks wait in a queue for a fixed pool of senders.
status_callbacks = CallbackQueue(CALLBACK_CONNECTIONS, "twilio-status")


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def twilio_error(status: int, code: int, message: str) -> JSONResponse:
    """Twilio's legacy error body, which twilio-python turns into TwilioRestException."""
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


def _unauthorized() -> JSONResponse:
    return JSONResponse(
        {
            "code": 20003,
            "detail": "Your AccountSid or AuthToken was incorrect.",
            "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003",
            "status": 401,
        },
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="Twilio API"'},
    )


def _authenticated(request: Request, account_sid: str, state: SandboxState) -> bool:
    """HTTP Basic with the AccountSid in the path and the auth token of one of its numbers."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    # A WhatsApp sender belongs to the same Twilio account and authenticates the same way.
    return user == account_sid and any(
        state.find_account(kind, account_sid=user, auth_token=password) is not None for kind in ("twilio", "whatsapp")
    )


def message_resource(
    sid: str, account_sid: str, from_: str, to: str, body: str, num_media: int, segments: int
) -> dict[str, Any]:
    """The Message resource Twilio answers a create with (status "queued"), for SMS and WhatsApp alike."""
    now = format_datetime(utcnow())
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}"
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": body,
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": from_,
        "messaging_service_sid": None,
        "num_media": str(num_media),
        "num_segments": str(segments),
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "queued",
        "subresource_uris": {
            "media": f"{uri}/Media.json",
            "feedback": f"{uri}/Feedback.json",
        },
        "to": to,
        "uri": f"{uri}.json",
    }


@router.get("/2010-04-01/Accounts/{account_sid}.json")
async def fetch_account(account_sid: str, request: Request, state: SandboxState = Depends(get_state)) -> JSONResponse:
    """The Account resource: what a credentials check fetches, as cheap as Twilio's own API allows."""
    if not _authenticated(request, account_sid, state):
        return _unauthorized()
    return JSONResponse(
        {
            "sid": account_sid,
            "friendly_name": "Sandbox",
            "status": "active",
            "type": "Full",
            "uri": f"/2010-04-01/Accounts/{account_sid}.json",
        }
    )


@router.post("/2010-04-01/Accounts/{account_sid}/Messages.json")
async def create_message(account_sid: str, request: Request, state: SandboxState = Depends(get_state)) -> JSONResponse:
    if not _authenticated(request, account_sid, state):
        return _unauthorized()
    try:
        form = await read_params(request)
    except BadBody:
        return twilio_error(400, 21604, "A 'To' phone number is required.")
    to = str(param(form, "To") or "")
    from_ = str(param(form, "From") or "")
    if from_.startswith(WHATSAPP_PREFIX) or to.startswith(WHATSAPP_PREFIX):
        # One Messages resource for both; the channel prefix of the addresses chooses. Imported
        # here because whatsapp_api builds on this module.
        from channels.sandbox import whatsapp_api

        return await whatsapp_api.create_message(account_sid, form, state)
    body = str(param(form, "Body") or "")
    media_urls = [str(u) for u in every(form, "MediaUrl")]

    decision = state.decide("twilio", to)
    if decision.latency_s:
        await asyncio.sleep(decision.latency_s)
    if decision.outcome == "rate_limit":
        return twilio_error(429, 20429, "Too Many Requests")
    if decision.outcome == "server_error":
        return twilio_error(500, 20500, "Internal Server Error")

    if not to:
        return twilio_error(400, 21604, "A 'To' phone number is required.")
    if not body and not media_urls:
        return twilio_error(400, 21602, "Message body is required.")
    if len(body) > MAX_BODY_CHARS:
        return twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
    if not E164.match(to):
        return twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if not from_:
        return twilio_error(400, 21603, "A 'From' phone number is required.")
    sender = state.find_account("twilio", account_sid=account_sid, phone_number=from_)
    if sender is None:
        return twilio_error(
            400,
            21606,
            f"The From phone number {from_} is not a valid, SMS-capable inbound phone number"
            " or short code for your account.",
        )
    if state.is_opted_out(from_, to):
        return twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
    if decision.outcome == "permanent":
        return twilio_error(400, 21614, f"'To' number {to} is not a valid mobile number")

    sid = new_sid("MM" if media_urls else "SM")
    if not decision.undelivered:
        state.record("twilio", to, from_, body, provider_id=sid, media_urls=tuple(media_urls))
    callback = param(form, "StatusCallback")
    if callback:
        _start_status_callbacks(
            str(callback),
            str(sender.secrets["auth_token"]),
            {
                "MessageSid": sid,
                "SmsSid": sid,
                "AccountSid": account_sid,
                "From": from_,
                "To": to,
                "ApiVersion": API_VERSION,
            },
            undelivered=decision.undelivered,
        )
    if decision.answer_latency_s:
        await asyncio.sleep(decision.answer_latency_s)
    resource = message_resource(sid, account_sid, from_, to, body, len(media_urls), sms_segments(body)[0])
    return JSONResponse(resource, status_code=201)


def sign(auth_token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature over the exact URL the request goes to."""
    signature: str = RequestValidator(auth_token).compute_signature(url, params)
    return signature


def _start_status_callbacks(url: str, auth_token: str, base: dict[str, str], *, undelivered: bool) -> None:
    final: dict[str, str] = {"MessageStatus": "delivered"}
    if undelivered:
        final = {
            "MessageStatus": "undelivered",
            "ErrorCode": "30005",
            "ErrorMessage": "Unknown destination handset",
        }
    post_status_callbacks(url, auth_token, base, [{"MessageStatus": "sent"}, final])


def post_status_callbacks(url: str, auth_token: str, base: dict[str, str], steps: list[dict[str, str]]) -> None:
    """Queue signed callbacks to `url`, one per step, in order, each `base` plus the step's fields."""

    def run() -> None:
        for step in steps:
            time.sleep(CALLBACK_DELAY_S)
            params = {**base, **step, "SmsStatus": step["MessageStatus"]}
            headers = {"X-Twilio-Signature": sign(auth_token, url, params), "User-Agent": "TwilioProxy/1.1"}
            result = deliver_sync(url, headers=headers, form=params)
            log.debug("status callback %s → %s", step["MessageStatus"], result.status_code)

    # The 201 must not wait for the callbacks, and the hub may be slow to answer them.
    status_callbacks.submit(run)


def keyword_type(body: str) -> str | None:
    """OptOutType for a single-keyword message, as Twilio's default opt-out handling sets it."""
    word = body.strip().upper()
    if word in OPT_OUT_WORDS:
        return "STOP"
    if word in OPT_IN_WORDS:
        return "START"
    if word in HELP_WORDS:
        return "HELP"
    return None


def inbound_params(account: Account, sid: str, from_: str, body: str, media_urls: list[str]) -> dict[str, str]:
    """The form Twilio POSTs to the number's messaging webhook."""
    params = {
        "ToCountry": "DE",
        "ToState": "",
        "SmsMessageSid": sid,
        "NumMedia": str(len(media_urls)),
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": "DE",
        "To": str(account.config["phone_number"]),
        "ToZip": "",
        "NumSegments": str(sms_segments(body)[0]),
        "MessageSid": sid,
        "AccountSid": str(account.config["account_sid"]),
        "From": from_,
        "ApiVersion": API_VERSION,
    }
    for index, url in enumerate(media_urls):
        params[f"MediaContentType{index}"] = mimetypes.guess_type(url)[0] or "image/jpeg"
        params[f"MediaUrl{index}"] = url
    option = keyword_type(body)
    if option:
        params["OptOutType"] = option
    return params


async def send_inbound(
    state: SandboxState, account: Account, from_: str, body: str, media_urls: list[str]
) -> tuple[str, Delivery]:
    """A citizen texts the hub's number: apply opt-out keywords, then POST the signed webhook."""
    option = keyword_type(body)
    hub_number = str(account.config["phone_number"])
    if option == "STOP":
        state.set_opted_out(hub_number, from_, True)
    elif option == "START":
        state.set_opted_out(hub_number, from_, False)
    sid = new_sid("MM" if media_urls else "SM")
    if not account.webhook_url:
        return sid, Delivery(None, "no webhook_url is configured for this number")
    params = inbound_params(account, sid, from_, body, media_urls)
    headers = {
        "X-Twilio-Signature": sign(str(account.secrets["auth_token"]), account.webhook_url, params),
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        "User-Agent": "TwilioProxy/1.1",
        "Accept": "*/*",
    }
    return sid, await deliver("POST", account.webhook_url, headers=headers, form=params)
