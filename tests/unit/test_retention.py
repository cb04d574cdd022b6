"""The retention period: messages of long-resolved conversations are deleted, everything else stays."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, col, select

from channels.base import InboundMessage
from hub.contacts.models import Contact
from hub.db import utcnow
from hub.inbox.models import Attachment, Conversation, InboundEvent, Message
from hub.inbox.retention import apply_retention
from hub.settings import Settings
from hub.subscribers.models import ConsentEvent
from tests.unit.db import Town, make_town, receive


def thread(session: Session, town: Town, number: int, *, status: str, resolved_days_ago: int | None) -> int:
    contact = Contact(municipality_id=town.id)
    session.add(contact)
    session.flush()
    assert contact.id is not None
    account_id = town.accounts["twilio"].id
    assert account_id is not None
    resolved = utcnow() - timedelta(days=resolved_days_ago) if resolved_days_ago is not None else None
    conversation = Conversation(
        municipality_id=town.id,
        contact_id=contact.id,
        channel_account_id=account_id,
        reference=f"{town.id}-{number}",
        public_token=f"{town.id}-{number}",
        status=status,
        resolved_at=resolved,
        subject="Meine Adresse ist ...",
    )
    session.add(conversation)
    session.flush()
    assert conversation.id is not None
    event = InboundEvent(
        municipality_id=town.id,
        channel_account_id=account_id,
        provider_id=f"SM{town.id}-{number}",
        event_type="message",
        raw=b"Body=Hallo",
    )
    session.add(event)
    session.flush()
    message = Message(
        municipality_id=town.id,
        conversation_id=conversation.id,
        channel_account_id=account_id,
        direction="inbound",
        body="Hallo",
        inbound_event_id=event.id,
    )
    session.add(message)
    session.flush()
    assert message.id is not None
    session.add(Attachment(municipality_id=town.id, message_id=message.id, content_type="image/png", data=b"png"))
    session.add(
        Message(
            municipality_id=town.id,
            conversation_id=conversation.id,
            channel_account_id=account_id,
            direction="outbound",
            body="Antwort",
        )
    )
    return conversation.id


def test_only_messages_of_conversations_resolved_before_the_period_are_deleted(session: Session) -> None:
    town = make_town(session)
    town.municipality.preferences = {**town.municipality.preferences, "retention_days": 365}
    session.add(town.municipality)
    expired = thread(session, town, 1, status="resolved", resolved_days_ago=400)
    recent = thread(session, town, 2, status="resolved", resolved_days_ago=10)
    still_open = thread(session, town, 3, status="open", resolved_days_ago=None)
    other = make_town(session, slug="ohnefrist")
    # An emptied field on the settings page: kept without limit.
    other.municipality.preferences = {**other.municipality.preferences, "retention_days": None}
    session.add(other.municipality)
    no_period = thread(session, other, 4, status="resolved", resolved_days_ago=4000)
    session.commit()

    assert apply_retention(session) == 2
    session.commit()
    left = set(session.exec(select(Message.conversation_id)).all())
    assert expired not in left and {recent, still_open, no_period} <= left
    assert session.exec(select(Attachment).join(Message).where(Message.conversation_id == expired)).first() is None
    assert len(session.exec(select(Attachment)).all()) == 3
    assert (
        len(session.exec(select(InboundEvent).where(col(InboundEvent.provider_id).startswith(f"SM{town.id}-1"))).all())
        == 0
    )
    kept = session.get(Conversation, expired)
    assert kept is not None and kept.subject is None and kept.reference == f"{town.id}-1"
    # Safe to run again: nothing left to delete.
    assert apply_retention(session) == 0


def test_commands_outside_cases_go_after_the_period_and_their_consent_record_stays(
    session: Session, settings: Settings
) -> None:
    town = make_town(session)
    town.municipality.preferences = {**town.municipality.preferences, "retention_days": 365}
    session.add(town.municipality)
    session.commit()
    long_ago = utcnow() - timedelta(days=400)
    receive(session, settings, town.accounts["twilio"],
            InboundMessage(provider_id="SMold", sender="+4915112345678", text="START", sent_at=long_ago),
            InboundMessage(provider_id="SMnew", sender="+4915112345678", text="STOP"))  # fmt: skip
    old_answer = session.exec(select(Message).where(Message.direction == "outbound").order_by(col(Message.id))).first()
    assert old_answer is not None
    old_answer.created_at = long_ago
    session.add(old_answer)
    session.commit()

    assert apply_retention(session) == 2
    session.commit()
    assert [m.body for m in session.exec(select(Message).where(Message.direction == "inbound"))] == ["STOP"]
    assert len(session.exec(select(Message).where(Message.direction == "outbound")).all()) == 1
    assert [e.provider_id for e in session.exec(select(InboundEvent))] == ["SMnew"]
    assert [e.action for e in session.exec(select(ConsentEvent).order_by(col(ConsentEvent.id)))] == [
        "subscribed",
        "stopped",
    ]
