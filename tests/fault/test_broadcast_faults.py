"""Broadcasts under faults, with real workers: provider errors, a warning mid-announcement, a killed worker.

Each test imports its own subscribers (a topic of its own) through `rathaus subscribers import`
and sends by SMS through the sandbox, whose record of what arrived is the judge.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from tests.fault.broadcasting import (
    addresses_in_state,
    approve,
    completed,
    import_subscribers,
    new_topic,
    received,
    scale,
    seed_subscribers,
    set_send_rate,
    wait_until_out,
)
from tests.running_hub import DEADLINE, IN_FLIGHT_PER_KILL, POSTGRES_ADMIN_URL, Hub, wait_for

pytestmark = pytest.mark.fault


def test_injected_429_and_5xx_end_in_every_message_delivered_once(hub: Hub, tmp_path: Path) -> None:
    """20 % of sends answered 5xx and 10 % 429 by the provider: in the end every citizen has the message once."""
    topic, numbers = import_subscribers(hub, tmp_path, 30 * scale())
    marker = f"Wasserrohrbruch {uuid.uuid4().hex[:6]}"
    hub.sandbox.set_faults(kind="twilio", rate_429=0.1, rate_5xx=0.2, seed=11)
    try:
        broadcast_id = approve(hub, kind="announcement", title=marker, topics=[topic],
                               texts={"de": {"body": "Die Lindenstraße ist ohne Wasser."}})  # fmt: skip
        report = completed(hub, broadcast_id, timeout=DEADLINE * scale())
    finally:
        hub.sandbox.clear_faults()
    assert Counter(item["to"] for item in received(hub, marker, numbers)) == dict.fromkeys(numbers, 1)
    assert report["totals"]["failed"] == 0


def test_a_warning_overtakes_a_running_announcement(hub: Hub, tmp_path: Path) -> None:
    news_topic, news_readers = import_subscribers(hub, tmp_path, 60)
    alert_topic, alerted = import_subscribers(hub, tmp_path, 5)
    news, alert = f"Stadtfest {uuid.uuid4().hex[:6]}", f"Unwetter {uuid.uuid4().hex[:6]}"
    announcement_id = approve(hub, kind="announcement", title=news, topics=[news_topic],
                              texts={"de": {"body": "Programm am Samstag."}})  # fmt: skip
    wait_until_out(hub, announcement_id, news, 5, news_readers)
    alert_id = approve(hub, kind="warning", severity="Extreme", title=alert, topics=[alert_topic],
                       texts={"de": {"body": "Bleiben Sie im Haus."}})  # fmt: skip
    wait_until_out(hub, alert_id, alert, 5, alerted)
    completed(hub, announcement_id)

    arrival = {item["id"]: datetime.fromisoformat(item["received_at"]) for item in hub.outbox(kind="twilio")}
    last_warning = max(arrival[item["id"]] for item in received(hub, alert, alerted))
    announcement_after = [item for item in received(hub, news, news_readers) if arrival[item["id"]] > last_warning]
    assert announcement_after, "the announcement was finished before the warning went out: nothing was overtaken"
    assert Counter(item["to"] for item in received(hub, alert, alerted)) == dict.fromkeys(alerted, 1)
    assert Counter(item["to"] for item in received(hub, news, news_readers)) == dict.fromkeys(news_readers, 1)


def assert_once_except_uncertain(
    hub: Hub, broadcast_id: int, marker: str, numbers: list[str], *, in_flight: int, kind: str = "twilio"
) -> dict[str, int]:
    """No number received the broadcast twice, and every number received it once, except rows the hub
    reports `uncertain`: those were in the provider call at a crash, so whether they arrived is
    unknowable and the policy is not to send them again. They may have arrived or not; there are at
    most `in_flight` of them. Returns how many numbers received it how often.
    """
    counts = Counter(item["to"] for item in received(hub, marker, numbers, kind))
    twice = sorted(number for number, count in counts.items() if count > 1)
    assert not twice, f"{len(twice)} numbers got it more than once, e.g. {twice[:5]}"
    assert set(counts) <= set(numbers)
    uncertain = addresses_in_state(hub, broadcast_id, "uncertain")
    assert len(uncertain) <= in_flight, f"{len(uncertain)} uncertain rows, but at most {in_flight} were in flight"
    missing = {number for number in numbers if counts[number] == 0}
    assert missing <= uncertain, f"missed without being reported: {sorted(missing - uncertain)[:5]}"
    return dict(Counter(counts.values()))


def kill_mid_announcement(hub: Hub, tmp_path: Path, count: int, kind: str = "twilio") -> None:
    """A worker SIGKILLed in the middle of an announcement to `count` citizens on `kind`, then restarted.

    "Exactly once" is what can be promised for every row but the ones in flight at the kill: the
    sweeper puts claimed rows back (never attempted) and marks the rows left in `sending`
    `uncertain` (the provider may or may not have taken them; an announcement is not sent twice).
    So: nobody gets it twice; everybody gets it once except those uncertain rows, which are at
    most one per worker thread and are reported, never silently lost.
    """
    before = set_send_rate(hub, kind, 1_000)  # at the default rate the sending alone is the test's time
    try:
        if kind == "twilio":
            topic, addresses = import_subscribers(hub, tmp_path, count)
        else:
            topic = new_topic(hub)
            addresses = [str(7_100_000_000 + n) for n in range(count)]  # Telegram chat ids
            seed_subscribers(hub, topic, addresses, kind)
        marker = f"Kanalarbeiten {uuid.uuid4().hex[:6]}"
        broadcast_id = approve(hub, kind="announcement", title=marker, topics=[topic], channels=[kind],
                               texts={"de": {"body": "Ab Montag wird der Kanal saniert."}})  # fmt: skip
        wait_until_out(hub, broadcast_id, marker, count // 3, addresses, kind=kind, timeout=DEADLINE + count / 5)
        killed = hub.kill_workers()
        assert len(received(hub, marker, addresses, kind)) < count, "the broadcast was finished before the kill"
        completed(hub, broadcast_id, timeout=DEADLINE + count / 5)
    finally:
        set_send_rate(hub, kind, before)
    assert_once_except_uncertain(hub, broadcast_id, marker, addresses, in_flight=IN_FLIGHT_PER_KILL * killed, kind=kind)


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_a_worker_killed_mid_announcement_leaves_no_duplicate_and_no_silent_gap(hub: Hub, tmp_path: Path) -> None:
    kill_mid_announcement(hub, tmp_path, 300 * scale())


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("hub", ["production"], indirect=True)
def test_a_worker_killed_mid_broadcast_of_ten_thousand_leaves_no_duplicate_and_no_silent_gap(
    hub: Hub, tmp_path: Path
) -> None:
    """At 10,000 by Telegram: SMS brings two delivery reports per message, which on this 2-core
    machine makes 10,000 SMS take ten minutes; the kill and the recovery are the same either way.
    """
    kill_mid_announcement(hub, tmp_path, 10_000 * scale(), kind="telegram")


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_a_worker_killed_mid_warning_sends_every_warning_again_rather_than_miss_one(hub: Hub, tmp_path: Path) -> None:
    """For a warning the policy is the other way round: a row in flight at the kill is sent again.

    So every citizen gets the warning at least once, and the only ones who may get it twice are
    the rows in flight at the kill (at most one per worker thread).
    """
    topic, numbers = import_subscribers(hub, tmp_path, 150 * scale())
    marker = f"Hochwasser {uuid.uuid4().hex[:6]}"
    warning_id = approve(hub, kind="warning", severity="Severe", title=marker, topics=[topic],
                         texts={"de": {"body": "Der Pegel steigt, meiden Sie das Ufer."}})  # fmt: skip
    wait_until_out(hub, warning_id, marker, 20, numbers)
    killed = hub.kill_workers()
    counts = wait_for(
        lambda: Counter(item["to"] for item in received(hub, marker, numbers)),
        until=lambda seen: len(seen) == len(numbers), timeout=DEADLINE * scale(), interval=0.5,
        what="every citizen to have the warning",
    )  # fmt: skip
    assert set(counts) == set(numbers)
    twice = [number for number, times in counts.items() if times > 1]
    assert len(twice) <= IN_FLIGHT_PER_KILL * killed and max(counts.values()) <= 2


@pytest.mark.parametrize("hub", ["production"], indirect=True)  # the embedded broker is the database itself
def test_a_broker_restart_mid_broadcast_loses_and_duplicates_nothing(hub: Hub, tmp_path: Path) -> None:
    """Redis killed and started again empty mid-broadcast: every queued task is gone, the database is not."""
    topic, numbers = import_subscribers(hub, tmp_path, 120 * scale())
    marker = f"Straßenreinigung {uuid.uuid4().hex[:6]}"
    broadcast_id = approve(hub, kind="announcement", title=marker, topics=[topic],
                           texts={"de": {"body": "Bitte parken Sie am Dienstag nicht an der Straße."}})  # fmt: skip
    wait_until_out(hub, broadcast_id, marker, 20, numbers)
    assert hub.redis is not None
    hub.redis.restart()

    completed(hub, broadcast_id, timeout=DEADLINE * scale())
    # Workers that lose the broker mid-send may exit; `rathaus serve` starts them again.
    assert_once_except_uncertain(hub, broadcast_id, marker, numbers, in_flight=2 * IN_FLIGHT_PER_KILL)


@pytest.mark.parametrize("hub", ["production"], indirect=True)
def test_postgres_connections_dropped_mid_broadcast_lose_and_duplicate_nothing(hub: Hub, tmp_path: Path) -> None:
    """Every connection to the hub's database terminated (pg_terminate_backend) twice while it sends.

    The web app, the workers and beat all lose their connections at once; pooled connections
    are found dead on their next use. Nothing is sent twice, nobody is missed but rows reported
    uncertain (a worker whose connection dies between the provider call and recording it).
    """
    topic, numbers = import_subscribers(hub, tmp_path, 120 * scale())
    marker = f"Baumpflege {uuid.uuid4().hex[:6]}"
    broadcast_id = approve(hub, kind="announcement", title=marker, topics=[topic],
                           texts={"de": {"body": "Im Stadtpark werden Bäume geschnitten."}})  # fmt: skip
    database = hub.database_url.rsplit("/", 1)[1]
    for share in (4, 2):
        wait_until_out(hub, broadcast_id, marker, len(numbers) // share, numbers)
        assert terminate_connections(database) > 0

    completed(hub, broadcast_id, timeout=DEADLINE * scale())
    assert_once_except_uncertain(hub, broadcast_id, marker, numbers, in_flight=4 * IN_FLIGHT_PER_KILL)


def terminate_connections(database: str) -> int:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)
