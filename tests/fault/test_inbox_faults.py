"""The inbox under faults, with real workers: killed while citizens write and are acknowledged, and while staff reply.

Citizens text the hub through the sandbox, whose record of what each number received is the
judge of what was sent; the hub's rows say what it stored and where each delivery report went.
What can be promised is what the broadcasts promise: every message stored once, nothing sent
twice, and every message sent once except the few in a provider call at the kill, which the
hub reports as uncertain instead of sending them again.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from sqlmodel import Session, col, select

from hub.contacts.models import ContactIdentity
from hub.inbox.models import Conversation, Message
from tests.fault.broadcasting import scale
from tests.running_hub import DEADLINE, IN_FLIGHT_PER_KILL, UNSENT, Hub, wait_for

pytestmark = pytest.mark.fault
T = TypeVar("T")

CITIZENS = 30
# The provider answers each send this long after taking it and starting its delivery reports: a
# kill finds sends in flight, and every report comes before the hub has recorded the message's id.
ANSWER_LATENCY_MS = 300
# What an acknowledgement has and nothing else sent to these citizens has: the case's reference.
REFERENCE = "A-"


@dataclass
class Thread:
    """What the hub holds for one citizen: the bodies that came in, and each message that went out."""

    conversations: set[int] = field(default_factory=set)
    inbound: list[str] = field(default_factory=list)
    outbound: list[Message] = field(default_factory=list)

    def sent(self, marker: str) -> list[Message]:
        return [message for message in self.outbound if marker in message.body]


def threads(hub: Hub, numbers: list[str]) -> dict[str, Thread]:
    """The hub's rows for each number that has written."""
    found: dict[str, Thread] = {}
    with Session(hub.engine) as session:
        rows = session.exec(
            select(ContactIdentity.address, Message)
            .join(Conversation, col(Conversation.contact_id) == ContactIdentity.contact_id)
            .join(Message, col(Message.conversation_id) == Conversation.id)
            .where(ContactIdentity.kind == "phone", col(ContactIdentity.address).in_(numbers))
            .order_by(col(Message.id))
        ).all()
    for address, message in rows:
        thread = found.setdefault(address, Thread())
        thread.conversations.add(message.conversation_id)
        if message.direction == "inbound":
            thread.inbound.append(message.body)
        else:
            thread.outbound.append(message)
    return found


def settled(hub: Hub, numbers: list[str], *, outbound_each: int) -> dict[str, Thread]:
    """Waits until every citizen's message is in the inbox and every message to them has been sent
    and reported on (or given up as uncertain); a timeout shows the citizens still waiting."""

    def waiting(seen: dict[str, Thread]) -> dict[str, list[str | None]]:
        unsettled = {}
        for number in numbers:
            thread = seen.get(number, Thread())
            states = [message.status for message in thread.outbound]
            # "sent" is not the end either: the provider's delivery report is still to come.
            if not thread.inbound or len(states) < outbound_each or any(s in (*UNSENT, "sent") for s in states):
                unsettled[number] = states
        return unsettled

    def check() -> tuple[dict[str, list[str | None]], dict[str, Thread]]:
        seen = threads(hub, numbers)
        return waiting(seen), seen

    return wait_for(
        check, until=lambda seen: not seen[0], timeout=DEADLINE * scale(), interval=0.5,
        what="every citizen's thread to settle (shown first: the ones still waiting, with their replies' states)",
    )[1]  # fmt: skip


def received(hub: Hub, numbers: list[str], marker: str, since: str) -> Counter[str]:
    """How often each number received a message containing `marker` after `since`, by the provider's
    record (the session's earlier tests left thousands there, too many to read at every poll)."""
    wanted = set(numbers)
    return Counter(
        item["to"] for item in hub.outbox(kind="twilio", since=since) if item["to"] in wanted and marker in item["text"]
    )


def assert_sent_once_except_uncertain(
    hub: Hub, numbers: list[str], found: dict[str, Thread], marker: str, *, since: str, killed: int
) -> None:
    """Nobody got the message twice; everybody got it once but those the hub reports uncertain (in a
    provider call at the kill, at most one per worker thread); and every message the provider has,
    but the uncertain ones, shows its delivery report on the hub's row."""
    counts = received(hub, numbers, marker, since)
    twice = sorted(number for number, count in counts.items() if count > 1)
    assert not twice, f"{len(twice)} citizens got it more than once, e.g. {twice[:5]}"
    uncertain = {n for n in numbers if any(m.error_code == "uncertain" for m in found[n].sent(marker))}
    assert len(uncertain) <= IN_FLIGHT_PER_KILL * killed, f"{len(uncertain)} uncertain, but {killed} workers killed"
    missing = {number for number in numbers if not counts[number]}
    assert missing <= uncertain, f"missed without being reported: {sorted(missing - uncertain)[:5]}"
    delivered = {n for n in numbers if [m.status for m in found[n].sent(marker)] == ["delivered"]}
    not_reported = set(counts) - uncertain - delivered
    assert not not_reported, f"the provider's delivery report never reached the hub's row for {sorted(not_reported)}"


def in_background(work: Callable[[], T]) -> Future[T]:
    """Runs `work` in a thread of its own, so that the kill can come while it is still going on."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(work)
    pool.shutdown(wait=False)
    return future


def write(hub: Hub, numbers: list[str], text: Callable[[str], str]) -> Future[list[int]]:
    """Each citizen texts the hub once, one after the other, in the background; the result is the
    hub's answers to the webhooks."""
    to = hub.accounts["twilio"]["address"]
    return in_background(lambda: [hub.sandbox.send_sms(from_=n, to=to, body=text(n))["status_code"] for n in numbers])


def reply(hub: Hub, conversations: list[int], text: str) -> Future[list[int]]:
    """Staff answer each conversation, one after the other, in the background; the result is the API's answers."""
    return in_background(
        lambda: [hub.api.post(f"/api/v1/conversations/{conversation_id}/replies", json={"text": text}).status_code
                 for conversation_id in conversations]
    )  # fmt: skip


def now() -> str:
    return datetime.now(UTC).isoformat()


def new_citizens(count: int) -> list[str]:
    base = uuid.uuid4().int % 10**4
    return [f"+49151{base:04d}{n:04d}" for n in range(count)]  # 8 digits after the prefix


def test_workers_killed_while_citizens_write_store_every_message_once_and_acknowledge_it_once(hub: Hub) -> None:
    numbers, since = new_citizens(CITIZENS * scale()), now()
    marker = uuid.uuid4().hex[:6]
    hub.sandbox.set_faults(kind="twilio", answer_latency_ms=ANSWER_LATENCY_MS)
    try:
        writing = write(hub, numbers, lambda number: f"Frage {marker} von {number}")
        wait_for(lambda: len(threads(hub, numbers)), until=lambda stored: stored >= len(numbers) // 3,
                 what="a third of the messages in the inbox")  # fmt: skip
        killed = hub.kill_workers()
        stored_at_kill = len(threads(hub, numbers))
        assert writing.result(timeout=DEADLINE * scale()) == [200] * len(numbers)
        found = settled(hub, numbers, outbound_each=1)
    finally:
        hub.sandbox.clear_faults()
    assert stored_at_kill < len(numbers), "every message was in the inbox before the kill"

    stored = {number: found[number].inbound for number in numbers}
    assert stored == {number: [f"Frage {marker} von {number}"] for number in numbers}, "a message lost or stored twice"
    assert all(len(found[number].conversations) == 1 for number in numbers)
    assert all(len(found[number].sent(REFERENCE)) == 1 for number in numbers), "one acknowledgement each"
    assert_sent_once_except_uncertain(hub, numbers, found, REFERENCE, since=since, killed=killed)


def test_workers_killed_while_staff_reply_send_every_reply_once_and_report_its_delivery(hub: Hub) -> None:
    numbers = new_citizens(CITIZENS * scale())
    writing = write(hub, numbers, lambda number: f"Wann ist das Bürgerbüro offen? ({number})")
    assert writing.result(timeout=DEADLINE * scale()) == [200] * len(numbers)
    conversations = [thread.conversations.pop() for thread in settled(hub, numbers, outbound_each=1).values()]

    marker, since = f"Antwort {uuid.uuid4().hex[:6]}", now()
    hub.sandbox.set_faults(kind="twilio", answer_latency_ms=ANSWER_LATENCY_MS)
    try:
        replying = reply(hub, conversations, f"{marker}: Montag bis Freitag, 8 bis 12 Uhr.")
        wait_for(lambda: received(hub, numbers, marker, since).total(), until=lambda out: out >= len(numbers) // 3,
                 what="a third of the replies at the provider")  # fmt: skip
        killed = hub.kill_workers()
        assert received(hub, numbers, marker, since).total() < len(numbers), "every reply was out before the kill"
        assert replying.result(timeout=DEADLINE * scale()) == [202] * len(numbers)
        found = settled(hub, numbers, outbound_each=2)
    finally:
        hub.sandbox.clear_faults()
    assert all(len(found[number].sent(marker)) == 1 for number in numbers), "a reply was written twice"
    assert_sent_once_except_uncertain(hub, numbers, found, marker, since=since, killed=killed)
