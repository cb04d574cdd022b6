"""JSON routes of the inbox: each validates, calls one service function and shapes the answer."""

from __future__ import annotations

import math
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlmodel import Session, col, select

from channels.registry import known_kinds
from hub.contacts.models import Contact
from hub.db import get_session, utcnow
from hub.i18n import language_of
from hub.inbox import bulk, service, snooze
from hub.inbox.models import Attachment, Conversation, InboundEvent, Message
from hub.inbox.schemas import (
    AttachmentOut,
    BulkIn,
    BulkOut,
    ChannelRef,
    ContactRef,
    ConversationOut,
    ConversationPageOut,
    ConversationPatch,
    InboundEventOut,
    MessageOut,
    ReplyIn,
    ReplyTemplateOut,
    SnoozeIn,
    TextIn,
)
from hub.tenancy.auth import require_permission
from hub.tenancy.models import ChannelAccount, StaffUser
from hub.web.downloads import download
from workers.app import enqueue_send

router = APIRouter(prefix="/api/v1", tags=["inbox"])


def conversations_out(session: Session, conversations: list[Conversation]) -> list[ConversationOut]:
    accounts = {
        account.id: account
        for account in session.exec(
            select(ChannelAccount).where(col(ChannelAccount.id).in_({c.channel_account_id for c in conversations}))
        )
    }
    contacts = {
        contact.id: contact
        for contact in session.exec(select(Contact).where(col(Contact.id).in_({c.contact_id for c in conversations})))
    }
    now = utcnow()
    shaped = []
    for conversation in conversations:
        account = accounts[conversation.channel_account_id]
        contact = contacts[conversation.contact_id]
        waiting = None
        if conversation.first_response_at is None and conversation.status != "resolved":
            waiting = (now - conversation.created_at).total_seconds()
        shaped.append(
            ConversationOut(
                **conversation.model_dump(exclude={"channel_account_id", "contact_id", "public_token"}),
                channel=ChannelRef(id=account.id, kind=account.kind, name=account.name),
                contact=ContactRef(id=contact.id, display_name=contact.display_name, language=contact.language),
                waiting_seconds=waiting,
            )
        )
    return shaped


def message_out(message: Message, attachments: list[Attachment]) -> MessageOut:
    return MessageOut(
        **message.model_dump(),
        attachments=[
            AttachmentOut(
                **attachment.model_dump(exclude={"data"}),
                download=f"/api/v1/attachments/{attachment.id}" if attachment.data is not None else None,
            )
            for attachment in attachments
        ],
    )


@router.get("/conversations", response_model=ConversationPageOut)
def list_conversations(
    status: str | None = Query(None, description="open, pending or resolved"),
    channel: str | None = Query(None, description="A channel kind: " + ", ".join(known_kinds())),
    assignee_id: int | None = Query(None),
    unassigned: bool = Query(False, description="Only conversations nobody is assigned to."),
    q: str | None = Query(None, max_length=200, description="Full text over the messages, or a reference."),
    snoozed: Literal["without", "only", "also"] = Query(
        "without", description="Conversations set aside until later (Wiedervorlage): left out, only those, or also."
    ),
    page: int = Query(1, ge=1),
    per_page: int = Query(25, ge=1, le=200),
    user: StaffUser = Depends(require_permission("inbox.read")),
    session: Session = Depends(get_session),
) -> ConversationPageOut:
    found = service.list_conversations(
        session,
        municipality_id=user.municipality_id,
        status=status,
        channel_kind=channel,
        assignee_id=assignee_id,
        unassigned=unassigned,
        search=q,
        snoozed={"without": False, "only": True, "also": None}[snoozed],
        page=page,
        per_page=per_page,
    )
    return ConversationPageOut(
        items=conversations_out(session, found.items),
        total=found.total,
        page=found.page,
        per_page=found.per_page,
        pages=max(1, math.ceil(found.total / found.per_page)),
    )


def bulk_out(request: Request, change: bulk.BulkChange) -> BulkOut:
    return BulkOut(
        change_id=change.id, action=change.action, changed=change.changed, undoable=change.undoable,
        merged_into=change.into, message=bulk.summary(change, language_of(request)),
    )  # fmt: skip


@router.post("/conversations/bulk", response_model=BulkOut)
def bulk_change(
    request: Request,
    body: BulkIn,
    user: StaffUser = Depends(require_permission("inbox.write")),
    session: Session = Depends(get_session),
) -> BulkOut:
    """Assigns, moves to a team, labels, sets the status of or merges many conversations at once (`ids`, or every
    one `matching` filters match); the answer's `change_id` undoes it for a minute, except a merge."""
    change = bulk.apply(
        session, municipality_id=user.municipality_id, actor_id=user.id or 0, action=body.action, value=body.value,
        conversation_ids=body.ids, matching=body.matching.query() if body.matching else None, confirmed=body.confirm,
    )  # fmt: skip
    session.commit()
    return bulk_out(request, change)


@router.post("/conversations/bulk/{change_id}/undo", response_model=BulkOut)
def undo_bulk_change(
    request: Request,
    change_id: int,
    user: StaffUser = Depends(require_permission("inbox.write")),
    session: Session = Depends(get_session),
) -> BulkOut:
    """Puts back every value the change replaced; only its author, once, within a minute."""
    change = bulk.undo(session, municipality_id=user.municipality_id, actor_id=user.id or 0, change_id=change_id)
    session.commit()
    return bulk_out(request, change)


@router.get("/conversations/{conversation_id}", response_model=ConversationOut)
def get_conversation(
    conversation_id: int,
    user: StaffUser = Depends(require_permission("inbox.read")),
    session: Session = Depends(get_session),
) -> ConversationOut:
    conversation = service.get_conversation(
        session, municipality_id=user.municipality_id, conversation_id=conversation_id
    )
    return conversations_out(session, [conversation])[0]


@router.get("/conversations/{conversation_id}/messages", response_model=list[MessageOut])
def list_messages(
    conversation_id: int,
    user: StaffUser = Depends(require_permission("inbox.read")),
    session: Session = Depends(get_session),
) -> list[MessageOut]:
    messages = service.list_messages(session, municipality_id=user.municipality_id, conversation_id=conversation_id)
    attachments = service.attachments_of(session, message_ids=[m.id for m in messages if m.id is not None])
    return [message_out(message, attachments.get(message.id or 0, [])) for message in messages]


@router.get("/conversations/{conversation_id}/templates", response_model=list[ReplyTemplateOut])
def reply_templates(
    conversation_id: int,
    user: StaffUser = Depends(require_permission("inbox.read")),
    session: Session = Depends(get_session),
) -> list[ReplyTemplateOut]:
    """The approved templates a reply may go out as, once the channel's reply window is closed (else none)."""
    offers = service.reply_templates(session, municipality_id=user.municipality_id, conversation_id=conversation_id)
    return [ReplyTemplateOut(language=offer.language, template=offer.template) for offer in offers]


@router.post("/conversations/{conversation_id}/replies", response_model=MessageOut, status_code=202)
def reply(
    conversation_id: int,
    body: ReplyIn,
    user: StaffUser = Depends(require_permission("inbox.write")),
    session: Session = Depends(get_session),
) -> MessageOut:
    """Queues a reply; it leaves on the conversation's channel, and its status follows in the messages.

    With `seen_message_id`, refused (409) where a colleague replied after that message.
    """
    message = service.reply(
        session,
        municipality_id=user.municipality_id,
        conversation_id=conversation_id,
        author=user,
        text=body.text,
        template_language=body.template,
        seen_message_id=body.seen_message_id,
    )
    session.commit()
    assert message.id is not None
    enqueue_send(message.id)
    return message_out(message, [])


@router.post("/conversations/{conversation_id}/notes", response_model=MessageOut, status_code=201)
def add_note(
    conversation_id: int,
    body: TextIn,
    user: StaffUser = Depends(require_permission("inbox.write")),
    session: Session = Depends(get_session),
) -> MessageOut:
    note = service.add_note(
        session,
        municipality_id=user.municipality_id,
        conversation_id=conversation_id,
        author=user,
        text=body.text,
    )
    session.commit()
    return message_out(note, [])


@router.patch("/conversations/{conversation_id}", response_model=ConversationOut)
def update_conversation(
    conversation_id: int,
    body: ConversationPatch,
    user: StaffUser = Depends(require_permission("inbox.write")),
    session: Session = Depends(get_session),
) -> ConversationOut:
    """Sets status, assignee or team; a field sent as null clears it, a field left out stays."""
    changes: dict[str, Any] = {name: getattr(body, name) for name in body.model_fields_set}
    conversation = service.update_conversation(
        session, municipality_id=user.municipality_id, conversation_id=conversation_id, **changes
    )
    session.commit()
    return conversations_out(session, [conversation])[0]


@router.put("/conversations/{conversation_id}/snooze", response_model=ConversationOut)
def snooze_conversation(
    conversation_id: int,
    body: SnoozeIn,
    user: StaffUser = Depends(require_permission("inbox.write")),
    session: Session = Depends(get_session),
) -> ConversationOut:
    """Sets the conversation aside until the day and time (Wiedervorlage); it comes back open then, or at once
    when the citizen writes. A moment in the past is refused."""
    conversation = snooze.snooze(
        session, municipality_id=user.municipality_id, conversation_id=conversation_id, actor_id=user.id or 0,
        day=body.day, at=body.at,
    )  # fmt: skip
    session.commit()
    return conversations_out(session, [conversation])[0]


@router.delete("/conversations/{conversation_id}/snooze", response_model=ConversationOut)
def end_snooze(
    conversation_id: int,
    user: StaffUser = Depends(require_permission("inbox.write")),
    session: Session = Depends(get_session),
) -> ConversationOut:
    """Brings a conversation set aside back into the open lists now."""
    conversation = snooze.end_snooze(
        session, municipality_id=user.municipality_id, conversation_id=conversation_id, actor_id=user.id or 0
    )
    session.commit()
    return conversations_out(session, [conversation])[0]


@router.get("/attachments/{attachment_id}")
def download_attachment(
    attachment_id: int,
    user: StaffUser = Depends(require_permission("inbox.read")),
    session: Session = Depends(get_session),
) -> Response:
    found = service.attachment_file(session, municipality_id=user.municipality_id, attachment_id=attachment_id)
    return download(found.data, filename=found.name, media_type=found.content_type)


@router.get("/inbound-events", response_model=list[InboundEventOut])
def list_inbound_events(
    state: str = Query("flagged", description="flagged (unreadable, for review), pending, done or ignored"),
    limit: int = Query(50, ge=1, le=500),
    user: StaffUser = Depends(require_permission("inbox.read")),
    session: Session = Depends(get_session),
) -> list[InboundEventOut]:
    """Inbound traffic by state; "flagged" lists what could not be read, kept raw for review."""
    events = session.exec(
        select(InboundEvent)
        .where(InboundEvent.municipality_id == user.municipality_id, InboundEvent.state == state)
        .order_by(col(InboundEvent.received_at).desc())
        .limit(limit)
    ).all()
    return [InboundEventOut(**event.model_dump(exclude={"raw", "payload"}), size=len(event.raw)) for event in events]
