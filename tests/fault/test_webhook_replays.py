"""Each provider delivers the same webhook three times, at once, as they do after a timeout: one message in the inbox.

The three copies race each other on purpose (three threads), which is what a provider's retry
after a slow answer looks like; uniqueness on the provider's id must decide, not timing.
"""

from __future__ import annotations

import json
import smtplib
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests.integration.test_bad_input import facebook_signature, inbound_bodies, twilio_form
from tests.running_hub import Hub

pytestmark = pytest.mark.fault


def three_times_at_once(send: Callable[[], Any]) -> list[Any]:
    with ThreadPoolExecutor(3) as pool:
        return list(pool.map(lambda _: send(), range(3)))


def assert_one_message(hub: Hub, sender: str, text: str) -> dict[str, Any]:
    """The inbox holds the message once, after the pipeline has run all that was stored; returns its conversation."""
    conversation = hub.wait_for_conversation_with(sender)
    hub.wait_until_stored_messages_ran()  # a second stored copy would be in the inbox by now
    assert inbound_bodies(hub, sender) == [text]
    return conversation


def test_twilio_sms_three_times(hub: Hub) -> None:
    citizen = "+49151" + str(uuid.uuid4().int)[:8]
    account = hub.accounts["twilio"]
    form = twilio_form(citizen, account["address"], "Dreimal geschickt")
    signature = RequestValidator(account["secrets"]["auth_token"]).compute_signature(account["webhook_url"], form)
    answers = three_times_at_once(
        lambda: httpx.post(account["webhook_url"], data=form, headers={"X-Twilio-Signature": signature})
    )
    assert [answer.status_code for answer in answers] == [200] * 3
    conversation = assert_one_message(hub, citizen, "Dreimal geschickt")
    hub.wait_for_replies_sent(conversation["id"])
    texts = [item["text"] for item in hub.outbox(kind="twilio", to=citizen)]
    assert len(texts) == 1, f"one acknowledgement expected, the citizen got: {texts}"


def test_telegram_update_three_times(hub: Hub) -> None:
    account = hub.accounts["telegram"]
    chat_id = 700_000_000 + uuid.uuid4().int % 10**8
    update = {
        "update_id": uuid.uuid4().int % 2**31,
        "message": {"message_id": 1, "date": int(time.time()), "text": "Dreimal geschickt",
                    "chat": {"id": chat_id, "type": "private", "first_name": "Erika"},
                    "from": {"id": chat_id, "is_bot": False, "first_name": "Erika", "language_code": "de"}},
    }  # fmt: skip
    body = json.dumps(update).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Telegram-Bot-Api-Secret-Token": account["secrets"]["webhook_secret"],
    }
    answers = three_times_at_once(lambda: httpx.post(account["webhook_url"], content=body, headers=headers))
    assert [answer.status_code for answer in answers] == [200] * 3
    assert_one_message(hub, str(chat_id), "Dreimal geschickt")


def test_facebook_message_three_times(hub: Hub) -> None:
    account = hub.accounts["facebook"]
    psid = str(7_000_000_000_000_000 + uuid.uuid4().int % 10**15)
    now = int(time.time() * 1000)
    page_id = account["config"]["page_id"]
    payload = {"object": "page", "entry": [{"id": page_id, "time": now, "messaging": [
        {"sender": {"id": psid}, "recipient": {"id": page_id}, "timestamp": now,
         "message": {"mid": "m_" + uuid.uuid4().hex, "text": "Dreimal geschickt"}}]}]}  # fmt: skip
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json",
               "X-Hub-Signature-256": facebook_signature(account["secrets"]["app_secret"], body)}  # fmt: skip
    answers = three_times_at_once(lambda: httpx.post(account["webhook_url"], content=body, headers=headers))
    assert [answer.status_code for answer in answers] == [200] * 3
    assert_one_message(hub, psid, "Dreimal geschickt")


def test_mail_to_the_smtp_listener_three_times(hub: Hub) -> None:
    sender = f"dreimal-{uuid.uuid4().hex[:8]}@example.org"
    to = hub.accounts["email"]["address"]
    raw = (f"From: {sender}\r\nTo: {to}\r\nSubject: Dreimal\r\nMessage-ID: <{uuid.uuid4().hex}@example.org>\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n\r\nDreimal geschickt\r\n").encode()  # fmt: skip

    def deliver() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", int(hub.env["RATHAUS_SMTP_PORT"]), timeout=30) as client:
            return client.sendmail(sender, [to], raw)

    assert three_times_at_once(deliver) == [{}] * 3  # accepted each time: a refusal would make it retry
    assert_one_message(hub, sender, "Dreimal geschickt")
