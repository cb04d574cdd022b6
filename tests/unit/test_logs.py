"""Log lines name the request and the town they belong to, in the request and in the task it enqueues."""

from __future__ import annotations

import io
import json
import logging
import smtplib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from fastapi.testclient import TestClient
from sqlmodel import Session
from twilio.request_validator import RequestValidator

from hub.app import create_app
from hub.logs import about_town, bind_town, log_handler, start_log_context
from hub.settings import Settings
from hub.smtp_listener import start_listener
from tests.running_hub import free_port
from tests.unit.db import make_town

Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    """What the hub logs from now on, as the JSON objects of RATHAUS_LOG_FORMAT=json."""
    stream = io.StringIO()
    handler = log_handler(Settings(log_format="json"), stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def test_a_request_s_lines_carry_its_id_and_town_and_the_answer_its_id(
    settings: Settings, session: Session, json_lines: Lines
) -> None:
    account = make_town(session, slug="logdorf").accounts["twilio"]
    with TestClient(create_app()) as client:
        answer = client.post(f"/webhooks/twilio/{account.id}", content=b"", headers={"X-Request-ID": "anfrage-42"})
    assert answer.status_code == 403
    assert answer.headers["X-Request-ID"] == "anfrage-42"
    [refused] = [line for line in json_lines() if line["logger"] == "hub.webhooks"]
    assert "refused" in refused["message"]
    assert refused["request_id"] == "anfrage-42" and refused["town"] == "logdorf"


def test_a_request_without_a_usable_id_gets_one_of_its_own(settings: Settings) -> None:
    with TestClient(create_app()) as client:
        plain = client.get("/healthz").headers["X-Request-ID"]
        flood = client.get("/healthz", headers={"X-Request-ID": "x" * 500}).headers["X-Request-ID"]
        forged = client.get("/healthz", headers={"X-Request-ID": "a} {b"}).headers["X-Request-ID"]
    assert len({plain, flood, forged}) == 3 and all(len(given) == 32 for given in (plain, flood, forged))


def test_a_task_a_request_enqueues_logs_under_the_request_s_id_and_town(
    settings: Settings, session: Session, json_lines: Lines, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A broker of its own in this process, and a worker on it: the headers travel as on Redis.
    broker = Celery("logs-test", broker="memory://")
    broker.conf.update(task_ignore_result=True, worker_hijack_root_logger=False, worker_redirect_stdouts=False)

    @broker.task(name="tests.pipeline")
    def pipeline(event_ids: list[int]) -> None:
        logging.getLogger("tests.pipeline").info("pipeline for events %s", event_ids)

    monkeypatch.setattr("hub.webhooks.enqueue_inbound", lambda ids: pipeline.delay(ids))
    account = make_town(session, slug="taskdorf").accounts["twilio"]
    path = f"/webhooks/twilio/{account.id}"
    form = {"MessageSid": "SM-log", "AccountSid": account.config["account_sid"], "From": "+4915112345678",
            "To": account.address, "Body": "Hallo"}  # fmt: skip
    signature = RequestValidator(account.secrets["auth_token"]).compute_signature(settings.public_url + path, form)
    with TestClient(create_app()) as client:
        answer = client.post(path, data=form, headers={"X-Twilio-Signature": signature, "X-Request-ID": "sms-7"})
    assert answer.status_code == 200, answer.text

    with start_worker(broker, pool="solo", perform_ping_check=False, loglevel="INFO"):
        deadline = time.monotonic() + 10
        while not (ran := [line for line in json_lines() if line["logger"] == "tests.pipeline"]):
            assert time.monotonic() < deadline, "the task did not run"
            time.sleep(0.02)
    assert ran[0]["request_id"] == "sms-7" and ran[0]["town"] == "taskdorf"


def test_each_mail_at_the_smtp_listener_logs_under_an_id_of_its_own_and_its_town(
    settings: Settings, session: Session, json_lines: Lines, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = make_town(session, slug="maildorf").accounts["email"]
    monkeypatch.setattr("hub.inbox.mail.enqueue_inbound", lambda ids: None)
    port = free_port()
    controller = start_listener(settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port}))
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            for number in (1, 2):
                client.sendmail("anna.weiss@example.de", [account.address],
                                f"Subject: Frage {number}\r\n\r\nWann hat das Amt offen?\r\n")  # fmt: skip
    finally:
        controller.stop()
    stored = [line for line in json_lines() if line["logger"] == "hub.smtp_listener" and "stored" in line["message"]]
    assert [line["town"] for line in stored] == ["maildorf", "maildorf"]
    assert len({line["request_id"] for line in stored}) == 2 and all(line["request_id"] for line in stored)


def test_a_loop_over_the_towns_logs_each_line_with_its_town_and_gives_the_town_back(json_lines: Lines) -> None:
    start_log_context()
    bind_town("kreisstadt")
    log = logging.getLogger("tests.beat")
    for slug in ("nord", "sued"):
        with about_town(slug):
            log.info("polled")
    log.info("all polled")
    assert [(line["message"], line["town"]) for line in json_lines() if line["logger"] == "tests.beat"] == [
        ("polled", "nord"), ("polled", "sued"), ("all polled", "kreisstadt"),
    ]  # fmt: skip
