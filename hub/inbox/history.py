"""A contact's other conversations, with status and reference, for the conversation's side panel and the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from hub.inbox.models import Conversation
from hub.tenancy.models import ChannelAccount

# The side panel and the API show this many, the latest first; the inbox's search finds the rest.
EARLIER_LIMIT = 20


@dataclass(frozen=True)
class EarlierConversation:
    conversation: Conversation
    channel_kind: str


def earlier_conversations(
    session: Session, *, municipality_id: int, contact_id: int, except_id: int | None = None
) -> list[EarlierConversation]:
    """The contact's conversations other than `except_id`, the latest activity first, in one query."""
    query = (
        select(Conversation, ChannelAccount.kind)
        .join(ChannelAccount, col(ChannelAccount.id) == Conversation.channel_account_id)
        .where(Conversation.municipality_id == municipality_id, Conversation.contact_id == contact_id)
    )
    if except_id is not None:
        query = query.where(Conversation.id != except_id)
    rows = session.exec(
        query.order_by(col(Conversation.last_activity_at).desc(), col(Conversation.id).desc()).limit(EARLIER_LIMIT)
    ).all()
    return [EarlierConversation(conversation, kind) for conversation, kind in rows]


def contact_context(session: Session, municipality_id: int, contact_id: int) -> dict[str, Any]:
    """The contact's conversations as JSON-ready values (hub.contacts.registry.CONTACT_CONTEXT)."""
    return {
        "conversations": [
            {
                "id": item.conversation.id,
                "reference": item.conversation.reference,
                "status": item.conversation.status,
                "subject": item.conversation.subject,
                "channel_kind": item.channel_kind,
                "created_at": item.conversation.created_at.isoformat(),
                "last_activity_at": item.conversation.last_activity_at.isoformat(),
            }
            for item in earlier_conversations(session, municipality_id=municipality_id, contact_id=contact_id)
        ]
    }
