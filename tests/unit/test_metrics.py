"""`/metrics`: counters move with a webhook and a send, scrape-time values are there, and strangers are refused."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session
from twilio.request_validator import RequestValidator

from channels.base import OutboundMessage
from hub import settings as settings_module
from hub.app import create_app
from hub.delivery.classes import REPLY
from hub.delivery.engine import Sender
from hub.metrics import MESSAGES_SENT, exposition
from hub.settings import Settings
from hub.tenancy.models import ChannelAccount
from tests.unit import test_email
from tests.unit.db import make_town
from tests.unit.test_email import SmtpSink

TOKEN = "prometheus-darf-lesen"
mail_sink = test_email.smtp_sink

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def settings(backend_settings: Settings) -> Settings:
    """The scrape-time queries on SQLite and on PostgreSQL."""
    return backend_settings


@pytest.fixture
def with_token(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("RATHAUS_METRICS_TOKEN", TOKEN)
    settings_module.get_settings.cache_clear()
    yield settings_module.get_settings()
    settings_module.get_settings.cache_clear()


def scrape(client: TestClient) -> Samples:
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return parse(answer.text)


def parse(text: str | bytes) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text if isinstance(text, str) else text.decode())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def post_sms(client: TestClient, settings: Settings, account: ChannelAccount, *, signed: bool = True) -> int:
    path = f"/webhooks/twilio/{account.id}"
    form = {
        "MessageSid": "SM" + "7" * 32,
        "AccountSid": account.config["account_sid"],
        "From": "+4915112345678",
        "To": account.config["phone_number"],
        "Body": "Die Laterne ist aus",
    }
    signature = RequestValidator(account.secrets["auth_token"]).compute_signature(settings.public_url + path, form)
    answer = client.post(path, data=form, headers={"X-Twilio-Signature": signature if signed else "falsch"})
    return answer.status_code


def test_a_webhook_and_a_send_move_the_counters(with_token: Settings, session: Session, mail_sink: SmtpSink) -> None:
    town = make_town(session)
    with TestClient(create_app()) as client:
        before = scrape(client)

        assert post_sms(client, with_token, town.accounts["twilio"]) == 200
        assert post_sms(client, with_token, town.accounts["twilio"], signed=False) == 403
        mailbox = town.accounts["email"]
        mailbox.config = {**mailbox.config, "smtp_port": mail_sink.port}
        outcome = Sender(with_token, mailbox, REPLY).send_now(OutboundMessage(to="eva@example.org", text="Erledigt"))
        assert outcome.state == "sent"
        after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("rathaus_webhooks_received_total", channel="twilio") == 2
    assert moved("rathaus_webhooks_rejected_total", channel="twilio", reason="signature") == 1
    assert moved("rathaus_messages_sent_total", channel="email", delivery_class="reply") == 1
    assert moved("rathaus_messages_failed_total", channel="email", delivery_class="reply", reason="rejected") == 0
    # Read at scrape time: the signed SMS waits in the inbound queue (no worker runs here).
    assert value(after, "rathaus_queue_depth", queue="inbound") >= 1
    assert ("rathaus_queue_depth", (("queue", "bulk"),)) in after
    assert ("rathaus_response_target_breaches", (("town", "testdorf"),)) in after


def test_without_the_token_metrics_are_refused(with_token: Settings) -> None:
    with TestClient(create_app()) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer geraten"}).status_code == 401
    # The token is asked for from loopback too, once it is set.
    with TestClient(create_app(), client=("127.0.0.1", 40000)) as client:
        assert client.get("/metrics").status_code == 401


def test_without_a_token_setting_only_loopback_may_scrape(settings: Settings) -> None:
    with TestClient(create_app(), client=("203.0.113.9", 40000)) as client:
        refused = client.get("/metrics")
    assert refused.status_code == 403
    assert "nur von diesem Rechner" in refused.text
    with TestClient(create_app(), client=("127.0.0.1", 40000)) as client:
        assert client.get("/metrics").status_code == 200
    with TestClient(create_app(), client=("::1", 40000)) as client:
        assert "rathaus_messages_sent_total" in client.get("/metrics").text


def test_counts_of_worker_processes_are_added_to_the_web_apps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `rathaus serve` sets up: workers counting in a shared folder, the web app in memory."""
    shared = tmp_path / "metrics"
    shared.mkdir()
    worker = (
        "from hub.metrics import MESSAGES_SENT, SWEEPER_REPAIRS\n"
        "MESSAGES_SENT.labels('telegram', 'warning').inc(3)\n"
        "SWEEPER_REPAIRS.labels('outbound_requeued').inc()\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared), "PYTHONPATH": str(Path.cwd())}
    subprocess.run([sys.executable, "-c", worker], env=env, check=True, timeout=60)
    assert list(shared.glob("counter_*.db")), "the worker wrote its counts to the folder"
    before = value(parse(exposition()), "rathaus_messages_sent_total", channel="telegram", delivery_class="warning")
    MESSAGES_SENT.labels("telegram", "warning").inc()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(shared))

    text = exposition().decode()

    samples = parse(text)
    assert value(samples, "rathaus_messages_sent_total", channel="telegram", delivery_class="warning") == before + 4
    assert value(samples, "rathaus_sweeper_repairs_total", kind="outbound_requeued") >= 1
    # Each family once, as the text format wants.
    assert text.count("# TYPE rathaus_messages_sent_total counter") == 1
