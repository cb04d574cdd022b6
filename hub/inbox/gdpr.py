"""The inbox's part of a citizen's data: their conversations, messages, attachments and raw events.

Export decisions: staff notes are included, because they are personal data about the citizen
and Art. 15 covers them; before handing the export out, staff should read the notes for third
parties' data that Art. 15(4) lets them withhold. Attachments come with their bytes (base64),
so the document is a complete copy. The raw webhook payloads are not repeated: they hold the
same messages in the providers' formats, and erasure empties them.
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from hub.contacts.registry import ERASED, Erasure, PersonalData, plain
from hub.inbox.models import Attachment, Conversation, InboundEvent, Message
from hub.tenancy.models import ChannelAccount


def _exported_messages(session: Session, query: SelectOfScalar[Message]) -> list[dict[str, Any]]:
    """The messages with their attachments' bytes, oldest first."""
    messages = session.exec(query.order_by(col(Message.created_at), col(Message.id))).all()
    attachments: dict[int, list[Attachment]] = {}
    for attachment in session.exec(select(Attachment).where(col(Attachment.message_id).in_([m.id for m in messages]))):
        attachments.setdefault(attachment.message_id, []).append(attachment)
    return [
        {
            **plain(message, exclude={"channel_account_id", "inbound_event_id", "claimed_at", "next_attempt_at"}),
            "attachments": [
                {
                    **plain(attachment, exclude={"data"}),
                    "data_base64": base64.b64encode(attachment.data).decode("ascii") if attachment.data else None,
                }
                for attachment in attachments.get(message.id or 0, [])
            ],
        }
        for message in messages
    ]


def export(session: Session, municipality_id: int, contact_id: int) -> dict[str, Any]:
    channels = {
        account.id: account.kind
        for account in session.exec(select(ChannelAccount).where(ChannelAccount.municipality_id == municipality_id))
    }
    conversations = session.exec(
        select(Conversation)
        .where(Conversation.municipality_id == municipality_id, Conversation.contact_id == contact_id)
        .order_by(col(Conversation.created_at))
    ).all()
    return {
        "conversations": [
            {
                **plain(conversation, exclude={"public_token", "channel_account_id"}),
                "channel": channels.get(conversation.channel_account_id),
                "messages": _exported_messages(
                    session, select(Message).where(Message.conversation_id == conversation.id)
                ),
            }
            for conversation in conversations
        ],
        # Commands and survey answers with the hub's answers to them, which belong to no case.
        "messages_outside_cases": _exported_messages(
            session,
            select(Message).where(Message.municipality_id == municipality_id, Message.contact_id == contact_id),
        ),
    }


def erase(session: Session, erasure: Erasure) -> dict[str, int]:
    conversation_ids = select(Conversation.id).where(col(Conversation.contact_id).in_(erasure.contact_ids))
    # Their cases' messages, and their commands and survey answers kept outside any case.
    theirs = or_(col(Message.conversation_id).in_(conversation_ids), col(Message.contact_id).in_(erasure.contact_ids))
    message_ids = select(Message.id).where(theirs)
    session.execute(
        update(Conversation)
        .where(col(Conversation.id).in_(conversation_ids), col(Conversation.subject).is_not(None))
        .values(subject=ERASED)
    )
    session.execute(
        update(Message).where(theirs).values(body=ERASED, email_references=[], choices=[], error_message=None)
    )
    session.execute(update(Message).where(theirs, col(Message.subject).is_not(None)).values(subject=ERASED))
    session.execute(
        update(Attachment)
        .where(col(Attachment.message_id).in_(message_ids))
        .values(data=None, url=None, filename=ERASED)
    )
    # The raw webhook bodies hold the same texts, numbers and names.
    session.execute(
        update(InboundEvent)
        .where(col(InboundEvent.id).in_(select(Message.inbound_event_id).where(col(Message.id).in_(message_ids))))
        .values(payload={}, raw=b"")
    )
    return {"messages": len(session.exec(select(Message.id).where(col(Message.id).in_(message_ids))).all())}


def merge(session: Session, municipality_id: int, target_id: int, source_id: int) -> None:
    session.execute(
        update(Conversation)
        .where(col(Conversation.municipality_id) == municipality_id, col(Conversation.contact_id) == source_id)
        .values(contact_id=target_id)
    )
    # Commands and survey answers are kept on the contact, not in a case: they move too.
    session.execute(
        update(Message)
        .where(col(Message.municipality_id) == municipality_id, col(Message.contact_id) == source_id)
        .values(contact_id=target_id)
    )


PERSONAL_DATA = PersonalData(name="inbox", export=export, erase=erase, merge=merge)
