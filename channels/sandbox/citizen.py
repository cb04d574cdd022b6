"""The /sandbox/... endpoints: provider-console set-up, faults, the outbox, and acting as a citizen."""

from __future__ import annotations

import base64
import binascii
import codecs
import email.policy
import re
import smtplib
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime, make_msgid
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from channels.sandbox import graph_api, telegram_api, twilio_api, whatsapp_api
from channels.sandbox.state import Account, FaultConfig, SandboxState, get_state

router = APIRouter(prefix="/sandbox", tags=["sandbox"])

Kind = Literal["twilio", "whatsapp", "telegram", "facebook", "email", "bigbluebutton", "jitsi"]
VideoKind = Literal["bigbluebutton", "jitsi"]
SMTP_TIMEOUT_S = 15.0


class _Model(BaseModel):
    # "from" is a keyword in Python: fields are named from_ and accept "from" on the wire.
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class AccountIn(_Model):
    kind: Kind
    webhook_url: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, Any] = Field(default_factory=dict)


class SmsIn(_Model):
    from_: str = Field(alias="from")
    to: str | None = None
    body: str
    media_urls: list[str] = Field(default_factory=list)

    @field_validator("from_")
    @classmethod
    def _e164(cls, value: str) -> str:
        if not twilio_api.E164.match(value):
            raise ValueError("must be an E.164 number such as +4915112345678")
        return value


class WhatsAppIn(SmsIn):
    """A WhatsApp message: text, media, a shared location or a button press (the number as for SMS)."""

    body: str = ""
    profile_name: str = "Erika Mustermann"
    latitude: float | None = None
    longitude: float | None = None
    label: str | None = None
    address: str | None = None
    # A press on a button the hub sent: its id and its title.
    button_payload: str | None = None
    button_text: str | None = None
    # How long ago the citizen wrote: a value over 24 lets tests exercise the closed window.
    hours_ago: float = Field(0.0, ge=0.0)


class WhatsAppTemplateIn(_Model):
    phone_number: str | None = None
    body: str
    language: str = "de"
    friendly_name: str = "rathaus_mitteilung"


class TelegramChatIn(_Model):
    bot_username: str | None = None
    bot_token: str | None = None
    chat_id: int
    first_name: str = "Erika"
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "de"

    def profile(self) -> dict[str, Any]:
        return {
            "id": self.chat_id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "username": self.username,
            "language_code": self.language_code,
        }


class TelegramMessageIn(TelegramChatIn):
    text: str
    # A photo sent with the text as its caption (base64 of a JPEG).
    photo_base64: str | None = None


class TelegramCallbackIn(TelegramChatIn):
    data: str
    message_id: int | None = None


class FacebookMessageIn(_Model):
    page_id: str | None = None
    psid: str
    text: str
    quick_reply_payload: str | None = None
    # When the citizen wrote (epoch ms): an old value lets tests exercise the closed window.
    timestamp_ms: int | None = None
    # A photo sent with the text (base64 of a JPEG), served from the emulated CDN.
    photo_base64: str | None = None
    # The citizen's name, as the User Profile API tells it from now on.
    first_name: str | None = None
    last_name: str | None = None


class FacebookCommentIn(_Model):
    page_id: str | None = None
    from_id: str
    from_name: str
    post_id: str
    message: str
    parent_id: str | None = None


class AttachmentIn(_Model):
    filename: str
    content_type: str = "application/octet-stream"
    data_base64: str


class EmailIn(_Model):
    from_: str = Field(alias="from")
    from_name: str | None = None
    to: str | None = None
    subject: str = ""
    text: str
    charset: str = "utf-8"
    transfer_encoding: Literal["quoted-printable", "base64", "8bit", "7bit"] = "quoted-printable"
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    attachments: list[AttachmentIn] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("charset")
    @classmethod
    def _known_charset(cls, value: str) -> str:
        codecs.lookup(value)
        return value


class EmailRawIn(_Model):
    to: str
    mail_from: str
    raw: str | None = None
    raw_base64: str | None = None


class FaultsIn(_Model):
    kind: Kind | None = None
    rate_429: float = Field(0.0, ge=0.0, le=1.0)
    rate_5xx: float = Field(0.0, ge=0.0, le=1.0)
    latency_ms: int = Field(0, ge=0, le=60_000)
    permanent_to: list[str] = Field(default_factory=list)
    undelivered_to: list[str] = Field(default_factory=list)
    answer_latency_ms: int = Field(0, ge=0, le=60_000)
    ignore_window: bool = False
    seed: int | None = None


def _pick(state: SandboxState, kind: str, **match: Any) -> Account:
    """The account the citizen addresses; with nothing named, the only account of the kind."""
    match = {key: value for key, value in match.items() if value is not None}
    if match:
        account = state.find_account(kind, **match)
        if account is None:
            named = ", ".join(f"{k}={v}" for k, v in match.items())
            raise HTTPException(404, f"no {kind} account with {named}")
        return account
    candidates = [a for a in state.accounts() if a.kind == kind]
    if len(candidates) != 1:
        raise HTTPException(
            400 if candidates else 404,
            f"{len(candidates)} {kind} accounts are registered; say which one",
        )
    return candidates[0]


# Control


@router.get("/healthz")
def healthz() -> dict[str, Any]:
    return {"ok": True}


@router.post("/accounts")
async def register_account(body: AccountIn, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    try:
        account, replaced = state.register_account(body.kind, body.webhook_url, body.config, body.secrets)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    result = {**account.public(), "replaced": replaced}
    if account.kind == "whatsapp":
        # Templates approved in the console: config "templates" maps content SID to language and body.
        whatsapp_api.register_templates(state, account)
    if account.kind == "facebook":
        # Meta checks the callback URL when it is saved; a hub that is not up yet just fails it.
        result["verified"] = await graph_api.verify_subscription(account)
    return result


@router.get("/accounts")
def list_accounts(state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    return {"items": [account.public() for account in state.accounts()]}


@router.get("/outbox")
def outbox(
    kind: Kind | None = None,
    to: str | None = None,
    since: str | None = None,
    state: SandboxState = Depends(get_state),
) -> dict[str, Any]:
    since_at = None
    if since:
        try:
            since_at = datetime.fromisoformat(since)
        except ValueError as exc:
            raise HTTPException(422, f"since must be an ISO 8601 time: {exc}") from exc
        if since_at.tzinfo is None:
            since_at = since_at.replace(tzinfo=UTC)
    return {"items": [item.to_json() for item in state.outbox(kind, to, since_at)]}


@router.get("/outbox/summary")
def outbox_summary(state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """Per channel kind: count, first and last arrival; cheaper than the outbox for 100,000 messages."""
    return state.outbox_summary()


@router.get("/callbacks")
def pending_callbacks() -> dict[str, int]:
    """Status callbacks still waiting to be posted to the hub."""
    return {"pending": twilio_api.status_callbacks.pending}


@router.delete("/callbacks")
def discard_callbacks() -> dict[str, int]:
    """Drops the status callbacks still waiting, e.g. those of a benchmark's baseline."""
    return {"discarded": twilio_api.status_callbacks.discard()}


@router.get("/meetings")
def meetings(kind: VideoKind | None = None, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """The video rooms: BigBlueButton meetings created and Jitsi rooms entered, with who is in them, oldest first."""
    return {"items": [meeting.to_json() for meeting in state.meetings(kind)]}


@router.delete("/outbox")
def clear_outbox(state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    state.clear_outbox()
    return {"ok": True}


def _faults_json(state: SandboxState) -> dict[str, Any]:
    return {"faults": {kind: config.to_json() for kind, config in state.faults().items()}}


@router.post("/faults")
def set_faults(body: FaultsIn, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    config = FaultConfig(
        rate_429=body.rate_429,
        rate_5xx=body.rate_5xx,
        latency_ms=body.latency_ms,
        permanent_to=frozenset(body.permanent_to),
        undelivered_to=frozenset(body.undelivered_to),
        answer_latency_ms=body.answer_latency_ms,
        ignore_window=body.ignore_window,
    )
    state.set_faults(body.kind, config, seed=body.seed)
    return _faults_json(state)


@router.get("/faults")
def get_faults(state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    return _faults_json(state)


@router.delete("/faults")
def clear_faults(state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    state.clear_faults()
    return _faults_json(state)


@router.post("/reset")
def reset(state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    state.reset()
    return {"ok": True}


# Acting as a citizen


@router.post("/twilio/sms")
async def citizen_sms(body: SmsIn, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    account = _pick(state, "twilio", phone_number=body.to)
    sid, delivery = await twilio_api.send_inbound(state, account, body.from_, body.body, body.media_urls)
    return {"message_sid": sid, **delivery.to_json()}


@router.post("/whatsapp/message")
async def citizen_whatsapp(body: WhatsAppIn, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    account = _pick(state, "whatsapp", phone_number=body.to)
    location = None
    if body.latitude is not None and body.longitude is not None:
        location = (body.latitude, body.longitude, body.label, body.address)
    button = (body.button_payload, body.button_text or body.button_payload) if body.button_payload else None
    sid, delivery = await whatsapp_api.send_inbound(
        state, account, body.from_, body=body.body, profile_name=body.profile_name, media_urls=body.media_urls,
        location=location, button=button, hours_ago=body.hours_ago,
    )  # fmt: skip
    return {"message_sid": sid, **delivery.to_json()}


@router.post("/whatsapp/templates")
def whatsapp_template(body: WhatsAppTemplateIn, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    """A template as if made in the Twilio console and approved by WhatsApp; `body` has {{1}} for the text."""
    account = _pick(state, "whatsapp", phone_number=body.phone_number)
    types = {"twilio/text": {"body": body.body}}
    data = {"friendly_name": body.friendly_name, "language": body.language, "types": types}
    content = whatsapp_api.new_content(state, str(account.config["account_sid"]), data, approved=True)
    return {"content_sid": content.sid, "language": content.language, "body": body.body}


def _decoded(photo_base64: str | None) -> bytes | None:
    if photo_base64 is None:
        return None
    try:
        return base64.b64decode(photo_base64, validate=True)
    except ValueError as exc:
        raise HTTPException(422, "photo_base64 is not base64") from exc


def _bot(state: SandboxState, body: TelegramChatIn) -> Account:
    return _pick(state, "telegram", bot_username=body.bot_username, bot_token=body.bot_token)


@router.post("/telegram/message")
async def citizen_telegram_message(body: TelegramMessageIn, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    photo = _decoded(body.photo_base64)
    update_id, message_id, delivery = await telegram_api.citizen_message(
        state, _bot(state, body), body.profile(), body.text, photo
    )
    return {"update_id": update_id, "message_id": message_id, **delivery.to_json()}


@router.post("/telegram/callback")
async def citizen_telegram_callback(
    body: TelegramCallbackIn, state: SandboxState = Depends(get_state)
) -> dict[str, Any]:
    try:
        update_id, query_id, delivery = await telegram_api.citizen_callback(
            state, _bot(state, body), body.profile(), body.data, body.message_id
        )
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc
    return {"update_id": update_id, "callback_query_id": query_id, **delivery.to_json()}


@router.get("/telegram/answered")
def telegram_answered(
    chat_id: int | None = None,
    bot_username: str | None = None,
    bot_token: str | None = None,
    state: SandboxState = Depends(get_state),
) -> dict[str, Any]:
    """The bot's answerCallbackQuery calls, one item per answered button press, oldest first.

    An answer is not a message in the chat (the citizen only sees the spinner stop, or a short
    notice when `text` is set), so answers are kept here rather than in GET /sandbox/outbox.
    Presses still waiting for an answer are not listed.
    """
    account = _pick(state, "telegram", bot_username=bot_username, bot_token=bot_token)
    token = str(account.secrets["bot_token"])
    return {"items": [query.to_json() for query in state.answered_callback_queries(token, chat_id)]}


@router.post("/telegram/block")
async def citizen_telegram_block(body: TelegramChatIn, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    update_id, delivery = await telegram_api.citizen_block(state, _bot(state, body), body.profile(), blocked=True)
    return {"update_id": update_id, **delivery.to_json()}


@router.post("/telegram/unblock")
async def citizen_telegram_unblock(body: TelegramChatIn, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    update_id, delivery = await telegram_api.citizen_block(state, _bot(state, body), body.profile(), blocked=False)
    return {"update_id": update_id, **delivery.to_json()}


@router.post("/facebook/message")
async def citizen_facebook_message(
    body: FacebookMessageIn, request: Request, state: SandboxState = Depends(get_state)
) -> dict[str, Any]:
    account = _pick(state, "facebook", page_id=body.page_id)
    photo = _decoded(body.photo_base64)
    images = (graph_api.cdn_url(state, str(request.base_url), photo),) if photo is not None else ()
    mid, delivery = await graph_api.citizen_message(
        state, account, body.psid, body.text, body.quick_reply_payload, body.timestamp_ms, images,
        (body.first_name or "", body.last_name or "") if body.first_name or body.last_name else None,
    )  # fmt: skip
    return {"mid": mid, **delivery.to_json()}


@router.post("/facebook/comment")
async def citizen_facebook_comment(body: FacebookCommentIn, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    account = _pick(state, "facebook", page_id=body.page_id)
    comment_id, delivery = await graph_api.citizen_comment(
        state,
        account,
        body.from_id,
        body.from_name,
        body.post_id,
        body.message,
        body.parent_id,
    )
    return {"comment_id": comment_id, **delivery.to_json()}


def build_mail(body: EmailIn, to: str) -> EmailMessage:
    """The citizen's mail as a mail client would build it: RFC 2047 headers, the body in the
    requested charset and transfer encoding, attachments as multipart/mixed."""
    message = EmailMessage()
    message["From"] = Address(display_name=body.from_name or "", addr_spec=body.from_)
    message["To"] = to
    message["Subject"] = body.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=body.from_.rpartition("@")[2] or "sandbox.localhost")
    if body.in_reply_to:
        message["In-Reply-To"] = body.in_reply_to
    if body.references:
        message["References"] = " ".join(body.references)
    for name, value in body.headers.items():
        del message[name]
        message[name] = value
    message.set_content(body.text, charset=body.charset, cte=body.transfer_encoding)
    for attachment in body.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            base64.b64decode(attachment.data_base64, validate=True),
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    return message


def _smtp_send(host: str, port: int, mail_from: str, to: str, data: bytes) -> str:
    """One SMTP transaction; returns the final reply, raises smtplib errors on refusal."""
    with smtplib.SMTP(host, port, local_hostname="sandbox.localhost", timeout=SMTP_TIMEOUT_S) as smtp:
        smtp.ehlo_or_helo_if_needed()
        options = ["BODY=8BITMIME"] if any(b > 127 for b in data) and smtp.has_extn("8bitmime") else []
        code, reply = smtp.mail(mail_from, options)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, mail_from)
        code, reply = smtp.rcpt(to)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({to: (code, reply)})
        code, reply = smtp.data(data)
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
        return f"{code} {reply.decode('utf-8', 'replace')}"


def _smtp_error_text(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, refusal = next(iter(exc.recipients.values()))
        return f"{code} {refusal.decode('utf-8', 'replace')}"
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        return f"{exc.smtp_code} {text}"
    return f"{type(exc).__name__}: {exc}"


def _email_account(state: SandboxState, to: str | None) -> Account:
    if to is None:
        return _pick(state, "email")
    account = state.find_email_account(to)
    if account is None:
        raise HTTPException(404, f"no email account with address {to}")
    return account


async def _deliver_mail(account: Account, recipient: str, mail_from: str, data: bytes) -> str:
    """Hand the mail to the hub's inbound SMTP listener named on the email account."""
    host, port = account.config.get("hub_smtp_host"), account.config.get("hub_smtp_port")
    if not host or not port:
        raise HTTPException(409, "the email account has no hub_smtp_host/hub_smtp_port")
    try:
        return await run_in_threadpool(_smtp_send, str(host), int(port), mail_from, recipient, data)
    except (smtplib.SMTPException, OSError) as exc:
        raise HTTPException(502, _smtp_error_text(exc)) from exc


@router.post("/email")
async def citizen_email(body: EmailIn, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    account = _email_account(state, body.to)
    recipient = body.to or account.identity
    try:
        message = build_mail(body, recipient)
        data = message.as_bytes(policy=email.policy.SMTP)
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise HTTPException(422, f"cannot build this mail: {exc}") from exc
    reply = await _deliver_mail(account, recipient, body.from_, data)
    return {"message_id": str(message["Message-ID"]), "smtp_response": reply}


@router.post("/email/raw")
async def citizen_email_raw(body: EmailRawIn, state: SandboxState = Depends(get_state)) -> dict[str, Any]:
    if (body.raw is None) == (body.raw_base64 is None):
        raise HTTPException(422, "give exactly one of raw and raw_base64")
    try:
        data = (
            base64.b64decode(body.raw_base64, validate=True)
            if body.raw_base64 is not None
            else (body.raw or "").encode("utf-8")
        )
    except binascii.Error as exc:
        raise HTTPException(422, f"raw_base64: {exc}") from exc
    # SMTP lines end in CRLF; a bare LF in JSON-carried text is a line end, not data.
    data = re.sub(rb"(?<!\r)\n", b"\r\n", data)
    headers = BytesHeaderParser(policy=email.policy.default).parsebytes(data)
    reply = await _deliver_mail(_email_account(state, body.to), body.to, body.mail_from, data)
    message_id = headers["message-id"]
    return {"message_id": str(message_id) if message_id else None, "smtp_response": reply}
