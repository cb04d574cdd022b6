"""Telegram updates through the webhook and the pipeline: what reaches the inbox and the consent record."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.app import create_app
from hub.contacts.models import ContactIdentity
from hub.inbox.models import Conversation, InboundEvent, Message
from hub.inbox.pipeline import process_event
from hub.settings import Settings
from hub.subscribers.models import ConsentEvent, Subscription
from hub.subscribers.selection import subscriber_query
from hub.tenancy.models import ChannelAccount
from tests.unit.db import make_town

FIXTURES = Path(__file__).parent.parent / "fixtures" / "telegram"
CITIZEN_CHAT = "5012345678"
GROUP_CHAT = "-1001987654321"


def fixture(name: str) -> dict[str, Any]:
    update: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return update


@dataclass
class Bot:
    """The town's Telegram webhook in this process; what it stores is run through the pipeline as the worker would."""

    client: TestClient
    account: ChannelAccount
    session: Session
    settings: Settings
    queued: list[list[int]]

    def post(self, update: dict[str, Any]) -> None:
        answer = self.client.post(
            f"/webhooks/telegram/{self.account.id}",
            content=json.dumps(update).encode(),
            headers={"X-Telegram-Bot-Api-Secret-Token": self.account.secrets["webhook_secret"]},
        )
        assert answer.status_code == 200, answer.text
        for event_id in self.queued.pop():
            process_event(self.session, self.settings, event_id)
            self.session.commit()
        self.session.expire_all()

    def inbound(self, chat: str = CITIZEN_CHAT) -> list[str]:
        """The texts the inbox holds from one chat, oldest first."""
        return [
            message.body
            for message in self.session.exec(
                select(Message)
                .join(Conversation, col(Conversation.id) == Message.conversation_id)
                .join(ContactIdentity, col(ContactIdentity.contact_id) == Conversation.contact_id)
                .where(ContactIdentity.address == chat, Message.direction == "inbound")
                .order_by(col(Message.id))
            )
        ]

    def outbound(self) -> list[str]:
        return [m.body for m in self.session.exec(select(Message).where(Message.direction == "outbound"))]

    def subscription(self, chat: str) -> Subscription:
        identity = self.session.exec(select(ContactIdentity).where(ContactIdentity.address == chat)).one()
        return self.session.exec(select(Subscription).where(Subscription.contact_id == identity.contact_id)).one()

    def recipients(self) -> list[int]:
        """The contacts an announcement to every topic and district would reach."""
        query = subscriber_query(self.account.municipality_id, [], "any", [], "any")
        return [contact_id for contact_id, _ in self.session.execute(query)]


@pytest.fixture
def bot(settings: Settings, session: Session, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bot]:
    town = make_town(session)
    queued: list[list[int]] = []
    monkeypatch.setattr("hub.webhooks.enqueue_inbound", queued.append)
    with TestClient(create_app()) as client:
        yield Bot(client, town.accounts["telegram"], session, settings, queued)


def another_message(update: dict[str, Any], message_id: int, text: str) -> dict[str, Any]:
    """A different message in the same chat that Telegram sent under the same update_id."""
    other = copy.deepcopy(update)
    other["message"].update(message_id=message_id, text=text, date=update["message"]["date"] + 60)
    return other


# Update ids start again after a week without updates, and the sandbox's after a restart


def test_a_new_message_under_an_update_id_seen_before_still_reaches_the_inbox(bot: Bot) -> None:
    first = fixture("message__text.json")
    second = another_message(first, 500, "Und wo bekomme ich ein Passfoto?")

    bot.post(first)
    bot.post(second)

    assert bot.inbound() == [first["message"]["text"], "Und wo bekomme ich ein Passfoto?"]


def test_a_retried_update_is_still_stored_once(bot: Bot) -> None:
    update = fixture("message__text.json")

    bot.post(update)
    bot.post(update)

    assert bot.inbound() == [update["message"]["text"]]
    assert len(bot.session.exec(select(InboundEvent)).all()) == 1
    outbound = bot.session.exec(select(Message).where(Message.direction == "outbound")).all()
    assert len(outbound) == 1, "one acknowledgement"


def test_an_edit_under_the_same_update_id_is_kept_next_to_the_message(bot: Bot) -> None:
    message = fixture("message__text.json")
    edit = fixture("edited_message__text.json")
    edit["update_id"] = message["update_id"]

    bot.post(message)
    bot.post(edit)

    assert bot.inbound() == [message["message"]["text"], edit["edited_message"]["text"]]


# The bot blocked by the citizen, or removed from a group


def subscribe_by_keyword(bot: Bot, update: dict[str, Any], chat: str) -> None:
    keyword = another_message(update, 900, "ANMELDEN")
    bot.post(keyword)
    assert bot.subscription(chat).state == "active"


def test_blocking_the_bot_stops_the_subscription_and_records_it(bot: Bot) -> None:
    subscribe_by_keyword(bot, fixture("message__text.json"), CITIZEN_CHAT)
    subscribed = bot.subscription(CITIZEN_CHAT)
    assert bot.recipients() == [subscribed.contact_id]
    sent_before = bot.outbound()

    bot.post(fixture("my_chat_member__blocked.json"))
    bot.post(fixture("my_chat_member__blocked.json"))  # Telegram's retry

    assert bot.subscription(CITIZEN_CHAT).state == "stopped"
    assert bot.recipients() == [], "no broadcast goes to a chat that blocked the bot"
    [stop] = bot.session.exec(select(ConsentEvent).where(ConsentEvent.action == "stopped")).all()
    assert (stop.contact_id, stop.channel_kind, stop.source) == (subscribed.contact_id, "telegram", "telegram")
    assert stop.evidence["reason"] == "Bot vom Nutzer blockiert"
    assert stop.evidence["inbound_event_id"] is not None
    assert bot.outbound() == sent_before, "nothing is sent to a chat that blocked the bot"


@pytest.mark.parametrize("status", ["kicked", "left"])
def test_removing_the_bot_from_a_group_stops_the_groups_subscription(bot: Bot, status: str) -> None:
    subscribe_by_keyword(bot, fixture("message__group_text.json"), GROUP_CHAT)
    removed = fixture("my_chat_member__kicked_from_group.json")
    removed["my_chat_member"]["new_chat_member"]["status"] = status

    bot.post(removed)

    assert bot.subscription(GROUP_CHAT).state == "stopped"
    assert bot.recipients() == []
    [stop] = bot.session.exec(select(ConsentEvent).where(ConsentEvent.action == "stopped")).all()
    assert stop.evidence["reason"] == "Bot aus der Gruppe entfernt"


def test_a_chat_the_hub_never_heard_of_blocking_the_bot_creates_no_contact(bot: Bot) -> None:
    bot.post(fixture("my_chat_member__blocked.json"))

    assert bot.session.exec(select(ContactIdentity)).all() == []
    [event] = bot.session.exec(select(InboundEvent)).all()
    assert event.state == "ignored" and event.outcome is not None and "no contact" in event.outcome


# No personal status link in a group


def test_a_group_message_opens_a_case_without_posting_the_status_link_to_the_group(bot: Bot) -> None:
    update = fixture("message__group_text.json")

    bot.post(update)

    assert bot.inbound(GROUP_CHAT) == [update["message"]["text"]]
    conversation = bot.session.exec(select(Conversation)).one()
    assert conversation.status == "open"
    assert bot.outbound() == []
    event = bot.session.exec(select(InboundEvent)).one()
    assert event.outcome == "stored, no acknowledgement in a chat others read"


def test_a_private_chat_still_gets_the_acknowledgement_with_its_link(bot: Bot) -> None:
    bot.post(fixture("message__text.json"))

    conversation = bot.session.exec(select(Conversation)).one()
    [ack] = bot.session.exec(select(Message).where(Message.direction == "outbound")).all()
    assert f"/anfrage/{conversation.reference}/{conversation.public_token}" in ack.body
