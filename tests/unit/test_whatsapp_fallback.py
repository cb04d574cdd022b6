"""A broadcast's WhatsApp message Twilio took but later reported failed falls back to SMS, once (both backends)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from hub import db
from hub.app import create_app
from hub.broadcasts.models import Broadcast, Delivery
from hub.broadcasts.sending import complete_finished
from hub.settings import Settings
from tests.running_hub import wait_for
from tests.unit.conftest import FakeProvider, RecordedRequest
from tests.unit.test_broadcasts import Town, approved, citizen, phones, send_all, start
from tests.unit.test_broadcasts import sandbox as sandbox  # the broadcast tests' fixtures
from tests.unit.test_broadcasts import town as town
from tests.unit.test_whatsapp_broadcasts import deliveries, whatsapp_account, writes_on_whatsapp


@pytest.fixture
def settings(backend_settings: Settings, fake_provider: FakeProvider) -> Settings:
    """Both backends; the status callbacks go to a stand-in for the hub's public address, to be passed on."""
    backend_settings.public_url = fake_provider.url
    return backend_settings


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    with Session(db.get_engine(), expire_on_commit=False) as session:
        yield session


def failed_callback(provider: FakeProvider) -> RecordedRequest:
    """The signed `failed` status callback the sandbox posted for the WhatsApp message."""
    return wait_for(
        lambda: next((r for r in provider.requests if r.form.get("MessageStatus") == ["failed"]), None),
        what="the failed status callback",
    )


def pass_on(web: TestClient, callback: RecordedRequest) -> None:
    """The callback as Twilio posted it (body and signature) reaches the hub's webhook."""
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": callback.headers["x-twilio-signature"],
    }
    answer = web.post(callback.path, content=callback.body, headers=headers)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("fallback", [True, False])
def test_a_later_reported_whatsapp_failure_falls_back_to_sms_once_however_often_it_is_reported(
    session: Session, settings: Settings, town: Town, fake_provider: FakeProvider,
    monkeypatch: pytest.MonkeyPatch, fallback: bool,
) -> None:  # fmt: skip
    dispatched: list[tuple[int, int, int]] = []
    monkeypatch.setattr(
        "hub.broadcasts.sending.enqueue_broadcast_batch",
        lambda b, first, last, queue: dispatched.append((b, first, last)),
    )
    account = whatsapp_account(session, town, "Info: {{1}}")
    [number] = phones(1)
    citizen(session, town, number)
    writes_on_whatsapp(session, settings, account, number)
    town.sandbox.set_faults(kind="whatsapp", permanent_to=[number])  # taken with 201, then failed 63024

    broadcast = approved(session, town, fallback=fallback)
    start(session, broadcast)
    assert broadcast.id is not None
    send_all(settings, broadcast.id)
    assert deliveries(session, broadcast)[number][:2] == ("whatsapp", "sent")
    assert complete_finished(session) == [broadcast.id]
    session.commit()

    callback = failed_callback(fake_provider)
    with TestClient(create_app()) as web:
        pass_on(web, callback)
        pass_on(web, callback)  # Twilio retries the callback
        session.expire_all()
        if not fallback:
            assert deliveries(session, broadcast)[number][:2] == ("whatsapp", "failed") and dispatched == []
            return
        [(broadcast_id, first, last)] = dispatched
        row = session.get(Delivery, first)
        assert broadcast_id == broadcast.id and first == last and row is not None and row.address == number
        assert deliveries(session, broadcast)[number][:2] == ("twilio", "queued")
        assert row.error_message == "whatsapp: Invalid message recipient; nächster Kanal"
        reopened = session.get(Broadcast, broadcast.id)
        assert reopened is not None and reopened.status == "sending"

        send_all(settings, broadcast.id)
        pass_on(web, callback)  # and once more after the SMS went out

    session.expire_all()
    assert deliveries(session, broadcast)[number][:2] == ("twilio", "sent")
    assert [item["to"] for item in town.sandbox.outbox(kind="twilio")] == [number]
    assert len(dispatched) == 1
