"""The web app in this process: what a parser bug on a signed payload, or an impossible id, becomes."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, NoReturn

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import Session, select
from twilio.request_validator import RequestValidator

from channels.base import InboundMessage
from channels.email import EmailAdapter
from channels.facebook import FacebookAdapter
from hub.app import create_app
from hub.inbox.mail import accept_mail
from hub.inbox.models import InboundEvent, Message
from hub.inbox.outbound import send_message
from hub.settings import Settings
from hub.tenancy.models import ChannelAccount
from hub.tenancy.service import create_api_token, create_user
from tests.unit.conftest import FakeProvider
from tests.unit.db import make_town, receive
from tests.unit.test_admin_pages import twilio_answer
from workers.tasks import stop_everywhere


def parser_bug(*_args: Any) -> NoReturn:
    raise TypeError("'int' object is not iterable")


def flagged(session: Session) -> list[InboundEvent]:
    session.expire_all()
    return list(session.exec(select(InboundEvent).where(InboundEvent.state == "flagged")))


def test_a_parser_bug_on_a_signed_webhook_stores_it_flagged_and_answers_400(
    settings: Settings, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    town = make_town(session)
    account = town.accounts["facebook"]
    monkeypatch.setattr(FacebookAdapter, "parse", parser_bug)
    monkeypatch.setattr("hub.webhooks.enqueue_inbound", lambda ids: None)
    body = b'{"object":"page","entry":[{"messaging":0}]}'
    secret = account.secrets["app_secret"]
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        answer = client.post(f"/webhooks/facebook/{account.id}", content=body,
                             headers={"X-Hub-Signature-256": signature})  # fmt: skip
    assert answer.status_code == 400, answer.text
    assert "unerwarteter Aufbau der Nachricht (TypeError)" in answer.json()["detail"]
    [event] = flagged(session)
    assert event.raw == body and event.channel_account_id == account.id


def test_a_parser_bug_on_a_mail_stores_it_flagged_instead_of_deferring_it(
    settings: Settings, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    town = make_town(session)
    monkeypatch.setattr(EmailAdapter, "parse", parser_bug)
    monkeypatch.setattr("hub.inbox.mail.enqueue_inbound", lambda ids: None)
    raw = b"From: a@example.org\r\nSubject: x\r\n\r\nHallo\r\n"
    intake = accept_mail(town.accounts["email"], raw, mail_from="a@example.org", recipient="rathaus@testdorf.example")
    assert intake.kept and intake.flagged and "TypeError" in intake.flagged
    assert [event.raw for event in flagged(session)] == [raw]


def test_an_id_beyond_64_bits_is_a_422_not_a_500(settings: Settings, session: Session) -> None:
    """Found by schemathesis: SQLite raised OverflowError on the id and the API answered 500."""
    town = make_town(session)
    admin = create_user(session, municipality_id=town.id, email="a@testdorf.example", name="A", role="admin")
    token = create_api_token(session, user=admin, name="t")
    session.commit()
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        answer = client.post(f"/api/v1/broadcasts/{2**63}/cancel", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 422, answer.text
    assert "zu groß" in answer.json()["detail"]


def post_delivery_report(settings: Settings, account: ChannelAccount, sid: str, status: str = "delivered") -> Response:
    """Twilio's signed status callback for message `sid`, posted to the app in this process."""
    url = f"{settings.public_url}/webhooks/twilio/{account.id}/status"
    form = {"MessageSid": sid, "MessageStatus": status, "AccountSid": account.config["account_sid"]}
    signature = RequestValidator(account.secrets["auth_token"]).compute_signature(url, form)
    with TestClient(create_app()) as client:
        return client.post(url.removeprefix(settings.public_url), data=form, headers={"X-Twilio-Signature": signature})


def test_a_delivery_report_is_applied_by_the_webhook_itself_not_queued(
    settings: Settings, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broadcast's reports must not stand in the queue before citizens' messages."""
    town = make_town(session)
    account = town.accounts["twilio"]
    queued: list[list[int]] = []
    monkeypatch.setattr("hub.webhooks.enqueue_inbound", queued.append)
    [result] = receive(
        session, settings, account, InboundMessage(provider_id="SM-in", sender="+4915112345678", text="Hallo")
    )
    reply = session.get(Message, result.to_send[0])
    assert reply is not None
    reply.provider_id, reply.status = "SM-reply", "sent"
    session.add(reply)
    session.commit()
    answer = post_delivery_report(settings, account, "SM-reply")
    assert answer.status_code == 200, answer.text
    session.refresh(reply)
    assert reply.status == "delivered"
    assert queued == [[]], "nothing was left for the queue"


def test_a_delivery_report_that_cannot_be_applied_stays_stored_and_goes_to_the_queue(
    settings: Settings, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure while applying a report is undone alone: the report itself is never lost."""
    town = make_town(session)
    account = town.accounts["twilio"]
    queued: list[list[int]] = []
    monkeypatch.setattr("hub.webhooks.enqueue_inbound", queued.append)
    monkeypatch.setattr("hub.inbox.pipeline.apply_status", parser_bug)
    answer = post_delivery_report(settings, account, "SM-lost")
    assert answer.status_code == 200, answer.text
    [event] = session.exec(select(InboundEvent).where(InboundEvent.provider_id.startswith("SM-lost"))).all()  # type: ignore[attr-defined]
    assert (event.event_type, event.state, event.outcome) == ("status", "pending", None)
    assert queued == [[event.id]]


def test_a_delivery_report_that_comes_before_the_reply_is_recorded_as_sent_is_applied_with_the_receipt(
    settings: Settings, session: Session, fake_provider: FakeProvider
) -> None:
    """Twilio reports on a message as soon as it has taken it, which can be before the worker has
    written its sid down: those reports wait and move the reply on once the sid is recorded."""
    town = make_town(session)
    account = town.accounts["twilio"]
    account.config = {**account.config, "api_base_url": fake_provider.url}
    session.add(account)
    session.commit()
    citizen = "+4915112345678"
    [result] = receive(session, settings, account, InboundMessage(provider_id="SM-in", sender=citizen, text="Hallo"))
    [ack_id] = result.to_send
    sid = "SM" + "e" * 32
    # Out of order too, as Twilio's callbacks may come: "delivered" before "sent".
    for status in ("delivered", "sent"):
        assert post_delivery_report(settings, account, sid, status).status_code == 200
    session.expire_all()
    assert session.get(Message, ack_id).status == "queued"  # type: ignore[union-attr]

    fake_provider.respond(201, twilio_answer(sid, citizen))
    assert send_message(settings, ack_id, on_opted_out=stop_everywhere).outcome == f"sent as {sid}"
    session.expire_all()
    ack = session.get(Message, ack_id)
    assert ack is not None and (ack.status, ack.provider_id) == ("delivered", sid) and ack.delivered_at is not None
    reports = session.exec(select(InboundEvent).where(InboundEvent.event_type == "status")).all()
    assert [(event.state, event.outcome) for event in reports] == [
        ("done", f"message {ack_id} is now delivered"),
        ("done", f"status sent ignored, message {ack_id} already delivered"),
    ]
