"""Generated provider payloads and raw bytes at every webhook and the SMTP listener, signed right and wrong.

Whatever arrives, the answer is never a 5xx (nor a 451 from the SMTP listener, which would make
the sending server retry for days): a readable payload is taken, an unreadable one that is
signed correctly is stored raw and refused with a 4xx that says why, and a request with a bad
signature gets 403 and stores nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aiosmtpd.smtp import Envelope
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from channels.base import PayloadError
from channels.twilio_sms import TwilioForm
from hub.smtp_listener import InboundMailHandler
from tests.fuzz.conftest import FuzzHub

pytestmark = pytest.mark.fuzz

# JSON values of any shape: providers change their payloads, and attackers send what they like.
json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
anything = st.recursive(
    json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip


def maybe(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the plausible value, sometimes anything at all in its place."""
    return st.one_of(plausible, plausible, anything)


phone = st.one_of(
    st.from_regex(r"\+49 ?1[5-7][0-9]{8,9}", fullmatch=True),
    st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),
    st.sampled_from(["", "whatsapp:+4915112345678", "00491511234567", "+0", "Anonymous"]),
    st.text(max_size=20),
)
words = st.text(max_size=200) | st.sampled_from(["STOP", "ANMELDEN ABFALL", "HILFE", "1", "/start", "TELEFON +49151"])

# Twilio: form fields, all strings, as an incoming message or a status callback.
twilio_form = st.fixed_dictionaries(
    {"MessageSid": st.from_regex(r"S[MB][0-9a-f]{32}", fullmatch=True) | st.text(max_size=40)},
    optional={
        "AccountSid": st.text(max_size=40),
        "From": phone,
        "To": phone,
        "Body": words,
        "NumMedia": st.integers(0, 12).map(str) | st.text(max_size=4),
        "MediaUrl0": st.sampled_from(["https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", ""])
        | st.text(max_size=40),
        "MediaContentType0": st.sampled_from(["image/jpeg", "application/pdf", ""]) | st.text(max_size=20),
        "NumSegments": st.integers(0, 20).map(str) | st.text(max_size=4),
        "SmsStatus": st.sampled_from(["received", "receiving", "delivered"]) | st.text(max_size=10),
        "MessageStatus": st.sampled_from(["queued", "sent", "delivered", "undelivered", "failed", "read", "received"])
        | st.text(max_size=10),
        "ErrorCode": st.sampled_from(["30003", "21610", ""]) | st.text(max_size=8),
        "FromCountry": st.text(max_size=4),
    },
)

telegram_user = st.fixed_dictionaries(
    {"id": maybe(st.integers(1, 2**40)), "is_bot": maybe(st.booleans()), "first_name": maybe(st.text(max_size=20))},
    optional={"last_name": maybe(st.text(max_size=20)), "username": maybe(st.text(max_size=20)),
              "language_code": maybe(st.sampled_from(["de", "en", "tr", ""]))},
)  # fmt: skip
telegram_chat = st.fixed_dictionaries(
    {"id": maybe(st.integers(-(2**40), 2**40)), "type": maybe(st.sampled_from(["private", "group", "channel"]))},
    optional={"first_name": maybe(st.text(max_size=20)), "title": maybe(st.text(max_size=20))},
)
telegram_message = st.fixed_dictionaries(
    {"message_id": maybe(st.integers(0, 2**31)), "date": maybe(st.integers(0, 2**32)), "chat": maybe(telegram_chat)},
    optional={
        "from": maybe(telegram_user),
        "text": maybe(words),
        "caption": maybe(st.text(max_size=40)),
        "photo": maybe(st.lists(st.fixed_dictionaries({"file_id": maybe(st.text(max_size=20)),
                                                       "file_unique_id": maybe(st.text(max_size=10)),
                                                       "width": maybe(st.integers()), "height": maybe(st.integers())}),
                                max_size=2)),
        "document": maybe(st.fixed_dictionaries({"file_id": maybe(st.text(max_size=20))},
                                                optional={"file_name": maybe(st.text(max_size=20))})),
        "contact": maybe(st.fixed_dictionaries({"phone_number": maybe(phone)})),
        "entities": maybe(st.lists(anything, max_size=2)),
    },
)  # fmt: skip
telegram_update = st.one_of(
    *(
        st.fixed_dictionaries({"update_id": maybe(st.integers(0, 2**31)), kind: maybe(body)})
        for kind, body in (
            ("message", telegram_message),
            ("edited_message", telegram_message),
            ("callback_query", st.fixed_dictionaries(
                {"id": maybe(st.text(max_size=20)), "from": maybe(telegram_user)},
                optional={"data": maybe(st.sampled_from(["survey:1:0", "topic:abfall", "done", "district:mitte"])
                                        | st.text(max_size=20)),
                          "message": maybe(telegram_message), "chat_instance": maybe(st.text(max_size=10))},
            )),
            ("my_chat_member", st.fixed_dictionaries(
                {"chat": maybe(telegram_chat), "from": maybe(telegram_user), "date": maybe(st.integers()),
                 "new_chat_member": maybe(st.fixed_dictionaries(
                     {"status": maybe(st.sampled_from(["kicked", "member", "left"])), "user": maybe(telegram_user)}))},
            )),
            ("channel_post", anything),
        )
    ),
    st.fixed_dictionaries({"update_id": maybe(st.integers())}),
    anything,
)  # fmt: skip

facebook_id = st.from_regex(r"[0-9]{15,17}", fullmatch=True) | st.text(max_size=20)
facebook_messaging = st.fixed_dictionaries(
    {"sender": maybe(st.fixed_dictionaries({"id": maybe(facebook_id)})),
     "recipient": maybe(st.fixed_dictionaries({"id": maybe(st.just("104857600000001") | facebook_id)})),
     "timestamp": maybe(st.integers(0, 2**45))},
    optional={
        "message": maybe(st.fixed_dictionaries(
            {"mid": maybe(st.text(max_size=30))},
            optional={"text": maybe(words), "is_echo": maybe(st.booleans()),
                      "quick_reply": maybe(st.fixed_dictionaries({"payload": maybe(st.text(max_size=20))})),
                      "attachments": maybe(st.lists(st.fixed_dictionaries(
                          {"type": maybe(st.sampled_from(["image", "file", "location"])),
                           "payload": maybe(st.fixed_dictionaries({}, optional={"url": maybe(st.text(max_size=30))}))}),
                          max_size=2))},
        )),
        "postback": maybe(st.fixed_dictionaries({"payload": maybe(st.text(max_size=20)),
                                                 "title": maybe(st.text(max_size=20))})),
    },
)  # fmt: skip
facebook_change = st.fixed_dictionaries(
    {"field": maybe(st.just("feed")),
     "value": maybe(st.fixed_dictionaries(
         {"item": maybe(st.sampled_from(["comment", "post", "reaction"])),
          "verb": maybe(st.sampled_from(["add", "edited", "remove"]))},
         optional={"comment_id": maybe(st.text(max_size=30)), "post_id": maybe(st.text(max_size=30)),
                   "parent_id": maybe(st.text(max_size=30)), "message": maybe(words),
                   "created_time": maybe(st.integers()),
                   "from": maybe(st.fixed_dictionaries({"id": maybe(facebook_id),
                                                        "name": maybe(st.text(max_size=20))}))},
     ))},
)  # fmt: skip
facebook_payload = st.one_of(
    st.fixed_dictionaries(
        {"object": maybe(st.just("page")),
         "entry": maybe(st.lists(st.fixed_dictionaries(
             {"id": maybe(st.just("104857600000001") | facebook_id), "time": maybe(st.integers())},
             optional={"messaging": maybe(st.lists(facebook_messaging, max_size=2)),
                       "changes": maybe(st.lists(facebook_change, max_size=2))},
         ), max_size=2))},
    ),
    anything,
)  # fmt: skip

# What an HTTP client can put in a header: printable ASCII.
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
header_names = st.sampled_from(
    ["From", "To", "Subject", "Message-ID", "In-Reply-To", "References", "Date", "Content-Type",
     "Content-Transfer-Encoding", "MIME-Version", "Auto-Submitted", "Precedence", "Reply-To", "List-Id"]
)  # fmt: skip
header_values = st.one_of(
    st.text(max_size=60),
    st.sampled_from(['text/plain; charset="iso-8859-1"', "multipart/mixed; boundary=b", "multipart/alternative",
                     "text/html", "quoted-printable", "base64", "=?utf-8?b?w6TDtsO8?=", "=?x-unknown?q?a?=",
                     "<a@b>", "<>", "Erika <erika@example.org>", "auto-replied", "bulk", "@", '"" <>']),
)  # fmt: skip


@st.composite
def raw_mail(draw: st.DrawFn) -> bytes:
    headers = draw(st.lists(st.tuples(header_names, header_values), max_size=8))
    body = draw(st.one_of(st.text(max_size=200).map(lambda text: text.encode("utf-8")), st.binary(max_size=200)))
    head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode("utf-8", "surrogateescape")
    boundary = draw(st.booleans())
    if boundary:
        body = b"--b\r\nContent-Type: text/plain\r\n\r\n" + body + b"\r\n--b--\r\n"
    return head + b"\r\n" + body


def post_twilio(fuzz_hub: FuzzHub, body: bytes, signature: str | None, *, status: bool = False) -> httpx.Response:
    url = fuzz_hub.accounts["twilio"]["webhook_url"] + ("/status" if status else "")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return fuzz_hub.client.post(urlsplit(url).path, content=body, headers=headers)


def twilio_signature(fuzz_hub: FuzzHub, body: bytes, *, status: bool = False) -> str:
    url = fuzz_hub.accounts["twilio"]["webhook_url"] + ("/status" if status else "")
    try:
        params = TwilioForm.from_body(body)  # a multi-dict, as Twilio's validator wants it
    except PayloadError:
        params = TwilioForm()
    return RequestValidator(fuzz_hub.accounts["twilio"]["secrets"]["auth_token"]).compute_signature(url, params)


def post_telegram(fuzz_hub: FuzzHub, body: bytes, secret: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return fuzz_hub.client.post(urlsplit(fuzz_hub.accounts["telegram"]["webhook_url"]).path, content=body,
                                headers=headers)  # fmt: skip


def post_facebook(fuzz_hub: FuzzHub, body: bytes, secret: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return fuzz_hub.client.post(urlsplit(fuzz_hub.accounts["facebook"]["webhook_url"]).path, content=body,
                                headers=headers)  # fmt: skip


def assert_taken_or_told(answer: httpx.Response) -> None:
    """Signed correctly: taken (200), or refused with a 4xx whose German detail says why."""
    assert answer.status_code < 500, answer.text
    if answer.status_code != 200:
        assert 400 <= answer.status_code < 500
        assert answer.json()["detail"], answer.text


def assert_refused_and_nothing_stored(fuzz_hub: FuzzHub, before: int, answer: httpx.Response) -> None:
    assert answer.status_code == 403, answer.text
    assert "Signatur" in answer.json()["detail"]
    assert fuzz_hub.stored_events() == before


def form_body(form: dict[str, str]) -> bytes:
    return str(httpx.QueryParams(form)).encode()


@given(form=twilio_form, status=st.booleans())
def test_twilio_form_signed_is_taken_or_refused_with_a_reason(
    fuzz_hub: FuzzHub, form: dict[str, str], status: bool
) -> None:
    body = form_body(form)
    assert_taken_or_told(post_twilio(fuzz_hub, body, twilio_signature(fuzz_hub, body, status=status), status=status))


@given(form=twilio_form, forged=st.none() | header_text)
def test_twilio_form_badly_signed_is_refused_and_stores_nothing(
    fuzz_hub: FuzzHub, form: dict[str, str], forged: str | None
) -> None:
    body = form_body(form)
    if forged == twilio_signature(fuzz_hub, body):
        return
    before = fuzz_hub.stored_events()
    assert_refused_and_nothing_stored(fuzz_hub, before, post_twilio(fuzz_hub, body, forged))


@given(update=telegram_update)
def test_telegram_update_with_the_secret_is_taken_or_refused_with_a_reason(fuzz_hub: FuzzHub, update: Any) -> None:
    secret = fuzz_hub.accounts["telegram"]["secrets"]["webhook_secret"]
    assert_taken_or_told(post_telegram(fuzz_hub, json.dumps(update).encode(), secret))


@given(update=telegram_update, forged=st.none() | header_text)
def test_telegram_update_without_the_secret_is_refused_and_stores_nothing(
    fuzz_hub: FuzzHub, update: Any, forged: str | None
) -> None:
    if forged == fuzz_hub.accounts["telegram"]["secrets"]["webhook_secret"]:
        return
    before = fuzz_hub.stored_events()
    assert_refused_and_nothing_stored(fuzz_hub, before, post_telegram(fuzz_hub, json.dumps(update).encode(), forged))


@given(payload=facebook_payload)
def test_facebook_payload_signed_is_taken_or_refused_with_a_reason(fuzz_hub: FuzzHub, payload: Any) -> None:
    secret = fuzz_hub.accounts["facebook"]["secrets"]["app_secret"]
    assert_taken_or_told(post_facebook(fuzz_hub, json.dumps(payload).encode(), secret))


@given(payload=facebook_payload, secret=st.text(min_size=1, max_size=20))
def test_facebook_payload_badly_signed_is_refused_and_stores_nothing(
    fuzz_hub: FuzzHub, payload: Any, secret: str
) -> None:
    if secret == fuzz_hub.accounts["facebook"]["secrets"]["app_secret"]:
        return
    before = fuzz_hub.stored_events()
    assert_refused_and_nothing_stored(fuzz_hub, before, post_facebook(fuzz_hub, json.dumps(payload).encode(), secret))


@given(body=st.binary(max_size=300), kind=st.sampled_from(["twilio", "telegram", "facebook"]))
def test_raw_bytes_signed_are_taken_or_refused_with_a_reason(fuzz_hub: FuzzHub, body: bytes, kind: str) -> None:
    secrets = fuzz_hub.accounts[kind]["secrets"]
    if kind == "twilio":
        answer = post_twilio(fuzz_hub, body, twilio_signature(fuzz_hub, body))
    elif kind == "telegram":
        answer = post_telegram(fuzz_hub, body, secrets["webhook_secret"])
    else:
        answer = post_facebook(fuzz_hub, body, secrets["app_secret"])
    assert_taken_or_told(answer)


@given(body=st.binary(max_size=300), kind=st.sampled_from(["twilio", "telegram", "facebook"]))
def test_raw_bytes_badly_signed_are_refused_and_store_nothing(fuzz_hub: FuzzHub, body: bytes, kind: str) -> None:
    before = fuzz_hub.stored_events()
    if kind == "twilio":
        answer = post_twilio(fuzz_hub, body, "c2lnbmF0dXI=")
    elif kind == "telegram":
        answer = post_telegram(fuzz_hub, body, "falsches-geheimnis")
    else:
        answer = post_facebook(fuzz_hub, body, "falsches-geheimnis")
    assert_refused_and_nothing_stored(fuzz_hub, before, answer)


@given(raw=raw_mail() | st.binary(max_size=300), mail_from=st.sampled_from(["", "erika@example.org", "<>", "x"]))
def test_raw_mail_at_the_smtp_listener_is_stored_never_deferred(fuzz_hub: FuzzHub, raw: bytes, mail_from: str) -> None:
    envelope = Envelope()
    envelope.mail_from = mail_from
    envelope.rcpt_tos = [fuzz_hub.accounts["email"]["config"]["address"]]
    envelope.original_content = raw
    before = fuzz_hub.stored_events()
    reply = asyncio.run(InboundMailHandler().handle_DATA(None, None, envelope))  # type: ignore[arg-type]
    assert reply.startswith("250"), reply
    assert fuzz_hub.stored_events() >= before  # a re-delivery of the same bytes adds nothing, which is right
