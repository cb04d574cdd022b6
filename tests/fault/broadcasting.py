"""Helpers for broadcasts under faults: subscribers by CSV import, drafts approved through the API, the verdict.

The sandbox's record of what each number received is the judge; the hub's report says which
rows it holds `uncertain` (in flight at a crash, not re-sent).
"""

from __future__ import annotations

import csv
import io
import os
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlmodel import Session, select

from channels.registry import adapter_class
from hub.contacts.models import Contact, ContactIdentity
from hub.subscribers.models import ConsentEvent, Subscription, SubscriptionTopic, Topic
from hub.tenancy.models import ChannelAccount
from tests.running_hub import DEADLINE, Hub, wait_for


def scale() -> int:
    """RATHAUS_FAULT_SCALE multiplies the sizes of the fault tests (1 in CI)."""
    return max(1, int(os.environ.get("RATHAUS_FAULT_SCALE", "1")))


IMPORT_CHUNK = 1_000
IMPORT_LIMIT = 1_000


def new_topic(hub: Hub) -> str:
    topic = "t" + uuid.uuid4().hex[:8]
    created = hub.api.post("/api/v1/topics", json={"key": topic, "name_de": f"Test {topic}"})
    assert created.status_code == 201, created.text
    return topic


def import_subscribers(hub: Hub, tmp_path: Path, count: int) -> tuple[str, list[str]]:
    """A new topic and `count` SMS subscribers to it; returns the topic key and the numbers.

    Up to IMPORT_LIMIT through `rathaus subscribers import`; beyond it written straight into the
    database, since the importer takes about 30 s per thousand rows on a loaded 2-core machine.
    """
    topic = new_topic(hub)
    base = uuid.uuid4().int % 10**3
    numbers = [f"+49157{base:03d}{n:05d}" for n in range(count)]  # 8 digits after the prefix
    if count > IMPORT_LIMIT:
        seed_subscribers(hub, topic, numbers)
        return topic, numbers
    for first in range(0, count, IMPORT_CHUNK):
        lines = ["phone;topics;consent_evidence"]
        lines += [f"{number};{topic};Papierformular 2026" for number in numbers[first : first + IMPORT_CHUNK]]
        csv_file = tmp_path / f"{topic}-{first}.csv"
        csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        imported = hub.cli("subscribers", "import", str(csv_file), timeout=300)
        assert imported.returncode == 0, imported.stderr
    return topic, numbers


def approve(hub: Hub, **draft: Any) -> int:
    created = hub.api.post("/api/v1/broadcasts", json={"channels": ["twilio"], **draft})
    assert created.status_code == 201, created.text
    broadcast_id = int(created.json()["id"])
    if draft["kind"] not in ("warning", "all_clear"):
        assert hub.api.post(f"/api/v1/broadcasts/{broadcast_id}/submit").status_code == 200
    approved = hub.api.post(f"/api/v1/broadcasts/{broadcast_id}/approve")
    assert approved.status_code == 200, approved.text
    return broadcast_id


def report(hub: Hub, broadcast_id: int) -> dict[str, Any]:
    answer = hub.api.get(f"/api/v1/broadcasts/{broadcast_id}/report")
    answer.raise_for_status()
    return dict(answer.json())


def completed(hub: Hub, broadcast_id: int, timeout: float = DEADLINE) -> dict[str, Any]:
    return wait_for(
        lambda: report(hub, broadcast_id), until=lambda seen: seen["status"] == "completed", timeout=timeout,
        what=f"broadcast {broadcast_id} to complete", interval=0.5,
    )  # fmt: skip


def received(hub: Hub, marker: str, recipients: Collection[str], kind: str = "twilio") -> list[dict[str, Any]]:
    """The messages with `marker` the provider has for `recipients`, the subscribers the test made.

    Others may have it too: whoever another test subscribed to every topic hears of each.
    """
    wanted = set(recipients)
    return [item for item in hub.outbox(kind=kind) if marker in item["text"] and item["to"] in wanted]


def wait_until_out(
    hub: Hub,
    broadcast_id: int,
    marker: str,
    count: int,
    recipients: Collection[str],
    *,
    kind: str = "twilio",
    timeout: float = DEADLINE,
) -> None:
    """Until `count` of the broadcast's messages have reached the provider; a timeout shows how many
    had, with the broadcast's status and totals as the hub reports them."""

    def progress() -> dict[str, Any]:
        seen = report(hub, broadcast_id)
        arrived = len(received(hub, marker, recipients, kind))
        return {"arrived": arrived, "status": seen["status"], "totals": seen["totals"]}

    wait_for(progress, until=lambda seen: seen["arrived"] >= count, timeout=timeout, interval=0.5,
             what=f"{count} messages of broadcast {broadcast_id} at the provider")  # fmt: skip


def addresses_in_state(hub: Hub, broadcast_id: int, state: str) -> set[str]:
    """The recipients whose delivery row is in `state`, from the report's CSV."""
    answer = hub.api.get(f"/api/v1/broadcasts/{broadcast_id}/report.csv")
    answer.raise_for_status()
    return {row["adresse"] for row in csv.DictReader(io.StringIO(answer.text), delimiter=";") if row["status"] == state}


def set_send_rate(hub: Hub, kind: str, per_second: int | None) -> int | None:
    """Sets the channel account's `rate_per_second` (None: the adapter's default) and returns the one before.

    As an administrator would for a provider that allows more; the workers read the account row
    before each batch.
    """
    engine = create_engine(hub.database_url)
    try:
        with Session(engine) as session:
            account = session.get(ChannelAccount, hub.accounts[kind]["id"])
            assert account is not None
            before = account.config.get("rate_per_second")
            config = {key: value for key, value in account.config.items() if key != "rate_per_second"}
            account.config = config if per_second is None else {**config, "rate_per_second": per_second}
            session.add(account)
            session.commit()
            return before
    finally:
        engine.dispose()


def seed_subscribers(hub: Hub, topic_key: str, numbers: list[str], kind: str = "twilio") -> None:
    """Active subscribers to one topic on channel `kind`, written in bulk as a finished import would leave them."""
    engine = create_engine(hub.database_url)
    try:
        with Session(engine) as session:
            account = session.get(ChannelAccount, hub.accounts[kind]["id"])
            assert account is not None
            town = account.municipality_id
            topic = session.exec(select(Topic).where(Topic.municipality_id == town, Topic.key == topic_key)).one()
            contacts = [Contact(municipality_id=town) for _ in numbers]
            session.add_all(contacts)
            session.flush()
            identity_kind = adapter_class(kind).identity.kind
            session.add_all(
                ContactIdentity(municipality_id=town, contact_id=c.id, kind=identity_kind, address=n)
                for c, n in zip(contacts, numbers, strict=True)
            )
            subscriptions = [Subscription(municipality_id=town, contact_id=c.id, state="active") for c in contacts]
            session.add_all(subscriptions)
            session.flush()
            for subscription in subscriptions:
                assert subscription.id is not None and topic.id is not None
                session.add(SubscriptionTopic(subscription_id=subscription.id, topic_id=topic.id))
                session.add(ConsentEvent(municipality_id=town, contact_id=subscription.contact_id,
                                         subscription_id=subscription.id, action="imported", source="import",
                                         evidence={"consent_evidence": "Papierformular 2026"}))  # fmt: skip
            session.commit()
    finally:
        engine.dispose()
