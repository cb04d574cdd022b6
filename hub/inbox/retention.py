"""Deletes what citizens wrote in resolved conversations once the municipality's retention period is over.

The conversation itself stays (its reference and times feed the reports); its messages, their
attachments and the raw provider payloads they came from are deleted, and its subject cleared.
A conversation reopened since is not resolved and keeps everything. Commands and survey
answers, kept outside any case with the hub's answers to them, go once they are that old
(the consent record and the counted answer stay).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, delete, select

from hub.db import utcnow
from hub.inbox.models import Attachment, Conversation, InboundEvent, Message
from hub.tenancy.models import Municipality
from hub.tenancy.preferences import preference

# Conversations per round: keeps each transaction short on a large backlog.
BATCH = 200


def expired_conversation_ids(session: Session, *, municipality: Municipality, now: datetime) -> list[int]:
    days = preference(municipality, "retention_days")
    if not days:
        return []
    cutoff = now - timedelta(days=int(days))
    return [
        conversation_id
        for conversation_id in session.exec(
            select(Conversation.id)
            .where(
                Conversation.municipality_id == municipality.id,
                Conversation.status == "resolved",
                col(Conversation.resolved_at) < cutoff,
                col(Conversation.id).in_(select(Message.conversation_id).distinct()),
            )
            .order_by(col(Conversation.id))
            .limit(BATCH)
        ).all()
        if conversation_id is not None
    ]


def purge_conversations(session: Session, conversation_ids: list[int]) -> int:
    """Deletes the conversations' messages with their attachments and raw events; returns how many messages."""
    if not conversation_ids:
        return 0
    deleted = _delete_messages(session, col(Message.conversation_id).in_(conversation_ids))
    for conversation in session.exec(select(Conversation).where(col(Conversation.id).in_(conversation_ids))):
        conversation.subject = None
        session.add(conversation)
    return deleted


def purge_outside_cases(session: Session, *, municipality: Municipality, now: datetime) -> int:
    """Deletes messages outside any case (commands, survey answers, answers to them) older than the period."""
    days = preference(municipality, "retention_days")
    if not days:
        return 0
    expired = (
        select(Message.id)
        .where(
            Message.municipality_id == municipality.id,
            col(Message.conversation_id).is_(None),
            col(Message.created_at) < now - timedelta(days=int(days)),
        )
        .limit(BATCH)
    )
    return _delete_messages(session, col(Message.id).in_(expired))


def _delete_messages(session: Session, which: ColumnElement[bool]) -> int:
    messages = session.exec(select(Message.id, Message.inbound_event_id).where(which)).all()
    message_ids = [message_id for message_id, _event in messages]
    event_ids = [event for _id, event in messages if event is not None]
    session.exec(delete(Attachment).where(col(Attachment.message_id).in_(message_ids)))
    session.exec(delete(Message).where(col(Message.id).in_(message_ids)))
    if event_ids:
        session.exec(delete(InboundEvent).where(col(InboundEvent.id).in_(event_ids)))
    return len(message_ids)


def apply_retention(session: Session, *, now: datetime | None = None) -> int:
    """One round for every municipality that set a retention period; returns the messages deleted."""
    now = now or utcnow()
    deleted = 0
    for municipality in session.exec(select(Municipality)).all():
        deleted += purge_conversations(session, expired_conversation_ids(session, municipality=municipality, now=now))
        deleted += purge_outside_cases(session, municipality=municipality, now=now)
    return deleted
