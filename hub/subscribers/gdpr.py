"""A citizen's data protection rights: everything about them as one JSON document (Art. 15), and erasure (Art. 17).

Export decisions: staff notes are included, because they are personal data about the citizen
and Art. 15 covers them; before handing the export out, staff should read the notes for third
parties' data that Art. 15(4) lets them withhold. Attachments come with their bytes (base64),
so the document is a complete copy. The raw webhook payloads are not repeated: they hold the
same messages in the providers' formats.

Erasure keeps what the municipality must still be able to count or prove without the person:
rows stay (messages, deliveries, survey answers, consent events), so statistics do not change,
but every text, address and name in them is removed. The consent record keeps what happened
and when, with its evidence (IP addresses, message texts, import lines) removed.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, SQLModel, col, delete, select
from sqlmodel.sql.expression import SelectOfScalar

from hub.audit.models import AuditEvent
from hub.broadcasts.models import Broadcast, Delivery, SurveyAnswer
from hub.contacts.models import Contact, ContactIdentity
from hub.contacts.service import get_contact, identities_of
from hub.db import utcnow
from hub.inbox.models import Attachment, Conversation, InboundEvent, Message
from hub.subscribers import catalogue, consent
from hub.subscribers.models import ConsentEvent, PhoneVerification
from hub.tenancy.models import ChannelAccount, Municipality

ERASED = "[gelöscht]"


def _plain(row: SQLModel, *, exclude: set[str] | None = None) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in row.model_dump(exclude=exclude).items()
    }


def _exported_messages(session: Session, query: SelectOfScalar[Message]) -> list[dict[str, Any]]:
    """The messages with their attachments' bytes, oldest first."""
    messages = session.exec(query.order_by(col(Message.created_at), col(Message.id))).all()
    attachments: dict[int, list[Attachment]] = {}
    for attachment in session.exec(select(Attachment).where(col(Attachment.message_id).in_([m.id for m in messages]))):
        attachments.setdefault(attachment.message_id, []).append(attachment)
    return [
        {
            **_plain(message, exclude={"channel_account_id", "inbound_event_id", "claimed_at", "next_attempt_at"}),
            "attachments": [
                {
                    **_plain(attachment, exclude={"data"}),
                    "data_base64": base64.b64encode(attachment.data).decode("ascii") if attachment.data else None,
                }
                for attachment in attachments.get(message.id or 0, [])
            ],
        }
        for message in messages
    ]


def export_contact(session: Session, municipality_id: int, contact_id: int) -> dict[str, Any]:
    """Everything the hub holds about one citizen, as one JSON-ready document."""
    contact = get_contact(session, municipality_id=municipality_id, contact_id=contact_id)
    municipality = session.get(Municipality, municipality_id)
    assert municipality is not None
    subscription = consent.get_subscription(session, municipality_id=municipality_id, contact_id=contact_id)
    topics = {t.id: t.key for t in catalogue.list_topics(session, municipality_id=municipality_id)}
    districts = {d.id: d.key for d in catalogue.list_districts(session, municipality_id=municipality_id)}
    channels = {
        account.id: account.kind
        for account in session.exec(select(ChannelAccount).where(ChannelAccount.municipality_id == municipality_id))
    }
    conversations = session.exec(
        select(Conversation)
        .where(Conversation.municipality_id == municipality_id, Conversation.contact_id == contact_id)
        .order_by(col(Conversation.created_at))
    ).all()
    exported_conversations = [
        {
            **_plain(conversation, exclude={"public_token", "channel_account_id"}),
            "channel": channels.get(conversation.channel_account_id),
            "messages": _exported_messages(session, select(Message).where(Message.conversation_id == conversation.id)),
        }
        for conversation in conversations
    ]
    broadcasts = {
        b.id: b.title for b in session.exec(select(Broadcast).where(Broadcast.municipality_id == municipality_id))
    }
    deliveries = session.exec(
        select(Delivery)
        .where(Delivery.municipality_id == municipality_id, Delivery.contact_id == contact_id)
        .order_by(col(Delivery.created_at))
    ).all()
    answers = session.exec(
        select(SurveyAnswer)
        .where(SurveyAnswer.municipality_id == municipality_id, SurveyAnswer.contact_id == contact_id)
        .order_by(col(SurveyAnswer.answered_at))
    ).all()
    return {
        "controller": municipality.name,
        "exported_at": utcnow().isoformat(),
        "contact": _plain(contact),
        "identities": [_plain(identity) for identity in identities_of(session, contact_id=contact_id)],
        "subscription": None
        if subscription is None
        else {
            **_plain(subscription),
            "topics": [topics[i] for i in consent.topic_ids_of(session, subscription)],
            "districts": [districts[i] for i in consent.district_ids_of(session, subscription)],
        },
        "consent_events": [
            _plain(event)
            for event in consent.consent_history(session, municipality_id=municipality_id, contact_id=contact_id)
        ],
        "conversations": exported_conversations,
        # Commands and survey answers with the hub's answers to them, which belong to no case.
        "messages_outside_cases": _exported_messages(
            session,
            select(Message).where(Message.municipality_id == municipality_id, Message.contact_id == contact_id),
        ),
        "deliveries": [
            {
                **_plain(delivery, exclude={"claimed_at", "next_attempt_at"}),
                "broadcast": broadcasts.get(delivery.broadcast_id),
            }
            for delivery in deliveries
        ],
        "survey_answers": [{**_plain(answer), "broadcast": broadcasts.get(answer.broadcast_id)} for answer in answers],
    }


def erase_contact(session: Session, *, municipality_id: int, contact_id: int, actor_id: int | None) -> dict[str, int]:
    """Erases the citizen's personal data and keeps the counts; a second erasure finds nothing more to do.

    Returns what was kept, as counts, for the caller to show.
    """
    contact = get_contact(session, municipality_id=municipality_id, contact_id=contact_id)
    # Contacts merged into this one are the same person.
    contact_ids = [contact_id, *session.exec(select(Contact.id).where(Contact.merged_into_id == contact_id)).all()]
    phones = session.exec(
        select(ContactIdentity.address).where(
            col(ContactIdentity.contact_id).in_(contact_ids), ContactIdentity.kind == "phone"
        )
    ).all()
    if phones:
        session.execute(
            delete(PhoneVerification).where(
                col(PhoneVerification.municipality_id) == municipality_id, col(PhoneVerification.phone).in_(phones)
            )
        )
    session.execute(delete(ContactIdentity).where(col(ContactIdentity.contact_id).in_(contact_ids)))
    session.execute(update(Contact).where(col(Contact.id).in_(contact_ids)).values(display_name=None))

    conversation_ids = select(Conversation.id).where(col(Conversation.contact_id).in_(contact_ids))
    # Their cases' messages, and their commands and survey answers kept outside any case.
    theirs = or_(col(Message.conversation_id).in_(conversation_ids), col(Message.contact_id).in_(contact_ids))
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
    session.execute(
        update(Delivery)
        .where(col(Delivery.municipality_id) == municipality_id, col(Delivery.contact_id).in_(contact_ids))
        .values(address=ERASED, error_message=None)
    )
    session.execute(
        update(ConsentEvent)
        .where(col(ConsentEvent.municipality_id) == municipality_id, col(ConsentEvent.contact_id).in_(contact_ids))
        .values(evidence={"redacted": True})
    )

    subscription = consent.get_subscription(session, municipality_id=municipality_id, contact_id=contact_id)
    already_erased = (
        subscription is not None
        and session.exec(
            select(ConsentEvent.id).where(
                ConsentEvent.subscription_id == subscription.id, ConsentEvent.action == "erased"
            )
        ).first()
        is not None
    )
    if not already_erased:
        change = consent.subscribe(
            session,
            municipality_id=municipality_id,
            contact_id=contact_id,
            channel_kind=None,
            source="api",
            evidence={"actor_id": actor_id},
            state="stopped",
            topic_ids=[],
            district_ids=[],
            action="erased",
        )
        if change.event is None:
            # Already stopped with nothing chosen: the erasure still goes on record.
            consent.record_consent(
                session,
                change.subscription,
                action="erased",
                channel_kind=None,
                source="api",
                evidence={"actor_id": actor_id},
            )
    kept = {
        "messages": len(session.exec(select(Message.id).where(col(Message.id).in_(message_ids))).all()),
        "deliveries": len(session.exec(select(Delivery.id).where(col(Delivery.contact_id).in_(contact_ids))).all()),
        "survey_answers": len(
            session.exec(select(SurveyAnswer.id).where(col(SurveyAnswer.contact_id).in_(contact_ids))).all()
        ),
    }
    session.add(
        AuditEvent(
            municipality_id=municipality_id,
            actor_id=actor_id,
            action="contact.erased",
            object_type="contact",
            object_id=contact.id,
            details={"kept": kept, "repeated": already_erased},
        )
    )
    session.flush()
    return kept
