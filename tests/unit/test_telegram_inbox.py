"""Telegram updates through the webhook and the pipeline: what reaches the inbox."""

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
from hub.tenancy.models import ChannelAccount
from tests.unit.db import make_town

FIXTURES = Path(__file__).parent.parent / "fixtures" / "telegram"
CITIZEN_CHAT = "5012345678"


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
