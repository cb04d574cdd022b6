"""The delivery engine: each send keeps its account's rate, priority goes ahead of bulk, opt-outs stop everywhere."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from sqlmodel import Session, select

from channels.base import OutboundMessage
from hub.contacts.models import ContactIdentity
from hub.delivery.engine import RecipientOptedOut, send_while_waiting
from hub.inbox import service as inbox
from hub.inbox.models import Conversation, Message
from hub.inbox.outbound import send_message
from hub.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter, hold_send_slot
from hub.settings import Settings
from hub.subscribers import verification
from hub.subscribers.models import ConsentEvent, Subscription
from tests.redis_claim import claim_redis_database
from tests.unit import test_broadcasts as broadcasts
from tests.unit.test_broadcasts import Town, citizen, reply_sms
from workers.tasks import stop_everywhere

NUMBER = "+4915199990011"
# The broadcast tests' town: an SMS and a Telegram account on the sandbox.
sandbox, town = broadcasts.sandbox, broadcasts.town


def busiest_second(times: list[datetime]) -> int:
    return max(sum(1 for t in times if first <= t < first + timedelta(seconds=1)) for first in times)


def sent_times(town: Town, to: str) -> list[datetime]:
    return sorted(
        datetime.fromisoformat(item["received_at"]) for item in town.sandbox.outbox(kind="twilio") if item["to"] == to
    )


def open_case(session: Session, settings: Settings, town: Town) -> Conversation:
    """The citizen writes in by SMS, so there is a case to answer."""
    reply_sms(session, settings, town, NUMBER, "Wann wird die Laterne repariert?", "SM" + "a" * 32)
    identity = session.exec(select(ContactIdentity).where(ContactIdentity.address == NUMBER)).one()
    return session.exec(select(Conversation).where(Conversation.contact_id == identity.contact_id)).one()


def staff_reply(session: Session, town: Town, conversation: Conversation, text: str) -> int:
    assert conversation.id is not None
    message = inbox.reply(
        session, municipality_id=town.id, conversation_id=conversation.id, author=town.staff, text=text
    )
    session.commit()
    assert message.id is not None
    return message.id


def test_a_reply_refused_with_an_opt_out_stops_the_citizen_on_every_channel(
    session: Session, settings: Settings, town: Town
) -> None:
    contact_id = citizen(session, town, NUMBER)
    conversation = open_case(session, settings, town)
    town.sandbox.send_sms(from_=NUMBER, to=town.sms.address, body="STOP")  # Twilio now answers 21610
    message_id = staff_reply(session, town, conversation, "Nächste Woche.")

    result = send_message(settings, message_id, on_opted_out=stop_everywhere)

    session.expire_all()
    assert result.outcome.startswith("opted out")
    message = session.get(Message, message_id)
    assert message is not None and message.status == "failed" and message.error_code == "21610"
    subscription = session.exec(select(Subscription).where(Subscription.contact_id == contact_id)).one()
    assert subscription.state == "stopped"
    [refusal] = session.exec(
        select(ConsentEvent).where(ConsentEvent.contact_id == contact_id, ConsentEvent.source == "provider_error")
    ).all()
    assert refusal.evidence["message_id"] == message_id


def test_replies_keep_to_the_accounts_rate(session: Session, settings: Settings, town: Town) -> None:
    town.sms.config = {**town.sms.config, "rate_per_second": 2}
    session.add(town.sms)
    session.commit()
    conversation = open_case(session, settings, town)
    replies = [staff_reply(session, town, conversation, f"Antwort {n}") for n in range(6)]

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(lambda message_id: send_message(settings, message_id, on_opted_out=stop_everywhere),
                                 replies))  # fmt: skip

    assert all(outcome.outcome.startswith("sent as") for outcome in outcomes)
    times = sent_times(town, NUMBER)
    assert len(times) >= 6 and busiest_second(times) <= 2


def test_codes_keep_to_the_accounts_rate(session: Session, settings: Settings, town: Town) -> None:
    town.sms.config = {**town.sms.config, "rate_per_second": 1}
    session.add(town.sms)
    session.commit()
    numbers = [f"+4915199990{n:03d}" for n in range(100, 104)]

    def send_code(number: str) -> None:
        send_while_waiting(settings, town.sms, OutboundMessage(to=number, text="Ihr Code: 123456"), language="de")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(send_code, numbers))

    times = sorted(t for number in numbers for t in sent_times(town, number))
    assert len(times) == 4 and busiest_second(times) == 1


def test_a_code_to_a_number_that_opted_out_is_refused_and_stops_its_contact(
    session: Session, settings: Settings, town: Town
) -> None:
    contact_id = citizen(session, town, NUMBER)
    town.sandbox.send_sms(from_=NUMBER, to=town.sms.address, body="STOP")

    with pytest.raises(RecipientOptedOut, match="abbestellt") as refused:
        verification.start_verification(
            session, municipality=town.municipality, phone=NUMBER, topics=[], district=None, language="de",
            client_ip="192.0.2.7",
        )  # fmt: skip

    assert refused.value.status_code == 422
    session.expire_all()
    subscription = session.exec(select(Subscription).where(Subscription.contact_id == contact_id)).one()
    assert subscription.state == "stopped"


@pytest.mark.parametrize("backend", ["memory", pytest.param("redis", marks=pytest.mark.production)])
def test_a_waiting_priority_send_takes_the_next_slot_before_bulk_that_waited_longer(
    backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "redis":
        url, release = claim_redis_database()
        request.addfinalizer(release)
        limiter: RateLimiter = RedisRateLimiter(url)
    else:
        limiter = MemoryRateLimiter()
    key = "channel:test"
    first = hold_send_slot(limiter, key, 1, priority=False, before_waiting=lambda: None)
    assert first is not None
    limiter.sent(key, first)  # the only slot counts for about a second more
    assert limiter.take_send(key, 1, "reply", priority=True) > 0  # a reply starts waiting

    # Each round the bulk send asks first; the reply, still waiting, asks after it.
    deadline, winner = time.monotonic() + 30, None
    while winner is None and time.monotonic() < deadline:
        if limiter.take_send(key, 1, "announcement", priority=False) == 0:
            winner = "announcement"
        elif limiter.take_send(key, 1, "reply", priority=True) == 0:
            winner = "reply"
        else:
            time.sleep(0.01)

    assert winner == "reply"
