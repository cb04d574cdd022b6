"""Tables of the inbox: raw inbound events, conversations, messages and their attachments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.db import UtcDateTime, utcnow


class InboundEvent(SQLModel, table=True):
    """What a webhook or the SMTP listener received, stored before answering the provider.

    Unique on (channel account, provider id), so a retried delivery stores nothing new.
    `state`: pending (waiting for the pipeline), done, ignored, or flagged (the body could not
    be read; kept raw for staff).
    """

    __table_args__ = (
        UniqueConstraint("channel_account_id", "provider_id"),
        Index("ix_inboundevent_state_received", "state", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    channel_account_id: int = Field(foreign_key="channelaccount.id")
    provider_id: str = Field(max_length=300)
    event_type: str = Field(max_length=16, description="message, status, opt_out, ignored or unreadable")
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    content_type: str = Field(default="", max_length=120)
    state: str = Field(default="pending", max_length=16)
    outcome: str | None = Field(default=None, max_length=300)
    attempts: int = Field(default=0)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    processed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ReferenceCounter(SQLModel, table=True):
    """Per municipality and year, the last number handed out in a public reference."""

    municipality_id: int = Field(foreign_key="municipality.id", primary_key=True)
    year: int = Field(primary_key=True)
    last: int = Field(default=0)


class Conversation(SQLModel, table=True):
    __table_args__ = (
        Index("ix_conversation_list", "municipality_id", "status", "last_activity_at"),
        Index("ix_conversation_thread", "contact_id", "channel_account_id", "thread_key"),
        Index("ix_conversation_changed", "municipality_id", "changed_at"),
        Index("ix_conversation_snoozed", "municipality_id", "snoozed_until"),
        # Each town numbers its own requests, so two towns may both have A-2026-00001.
        UniqueConstraint("municipality_id", "reference", name="uq_conversation_municipality_reference"),
    )

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    channel_account_id: int = Field(foreign_key="channelaccount.id", index=True)
    thread_key: str | None = Field(default=None, max_length=300)
    reference: str = Field(index=True, max_length=32)
    public_token: str = Field(max_length=64, description="Unguessable part of the citizen's status link.")
    status: str = Field(default="open", max_length=16, description="open, pending or resolved")
    subject: str | None = Field(default=None, max_length=300)
    assignee_id: int | None = Field(default=None, foreign_key="staffuser.id", index=True)
    team_id: int | None = Field(default=None, foreign_key="team.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_activity_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_inbound_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    first_response_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    snoozed_until: datetime | None = Field(
        default=None, sa_type=UtcDateTime,
        description="Wiedervorlage: out of the open lists until then, or until the citizen writes (inbox/snooze.py).",
    )  # fmt: skip
    changed_at: datetime | None = Field(
        default=None, sa_type=UtcDateTime,
        description="When status, assignee, team or Wiedervorlage last changed: what open lists follow live.",
    )  # fmt: skip
    merged_into_id: int | None = Field(
        default=None, foreign_key="conversation.id",
        description="The case this one was merged into (hub/inbox/bulk.py): where its thread and status link continue.",
    )  # fmt: skip


class Message(SQLModel, table=True):
    """An inbound or outbound message, or an internal note (direction "note").

    A message belongs to a case (`conversation_id`), or, when it is only a command or a survey
    answer, to the citizen alone (`contact_id`), together with the hub's automatic answer to it:
    those never enter a case or the citizen's status page.

    Outbound rows are written before sending (status queued); the send task claims them
    (queued -> sending) with one UPDATE that only one worker can win.
    """

    __table_args__ = (
        UniqueConstraint("channel_account_id", "provider_id"),
        Index("ix_message_conversation", "conversation_id", "created_at"),
        Index("ix_message_contact", "contact_id", "created_at"),
        Index("ix_message_outbound_state", "status", "next_attempt_at"),
        CheckConstraint("conversation_id IS NOT NULL OR contact_id IS NOT NULL", name="ck_message_case_or_contact"),
    )

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    contact_id: int | None = Field(
        default=None, foreign_key="contact.id", description="Set only on a message outside any case."
    )
    channel_account_id: int = Field(foreign_key="channelaccount.id")
    direction: str = Field(max_length=8, description="inbound, outbound or note")
    kind: str = Field(default="message", max_length=16, description="message, comment, postback, edit")
    provider_id: str | None = Field(default=None, max_length=300)
    inbound_event_id: int | None = Field(default=None, foreign_key="inboundevent.id")
    body: str = Field(sa_column=Column(Text, nullable=False))
    subject: str | None = Field(default=None, max_length=300)
    author_id: int | None = Field(default=None, foreign_key="staffuser.id")
    automated: bool = Field(default=False)
    reply_to_ref: str | None = Field(default=None, max_length=300)
    email_message_id: str | None = Field(default=None, max_length=300, index=True)
    email_references: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    choices: list[dict[str, str]] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False, server_default="[]"),
        description='Buttons sent with an outbound message: [{"label": ..., "payload": ...}].',
    )
    unprompted: bool = Field(
        default=False,
        sa_column_kwargs={"server_default": "0"},
        description="Started by the hub itself (a reminder), answering nothing: counted against a daily limit.",
    )
    template: str | None = Field(
        default=None,
        max_length=64,
        description="The approved template (the provider's id) a reply was sent as, its body the template's variable.",
    )
    status: str | None = Field(
        default=None,
        max_length=16,
        description="outbound: queued, sending, sent, delivered, undelivered, failed",
    )
    error_code: str | None = Field(default=None, max_length=32)
    error_message: str | None = Field(default=None, max_length=500)
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    claimed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    purpose: str | None = Field(
        default=None, max_length=32,
        description="What it is for where only approved templates go out (reminder, feedback); None: notices.",
    )  # fmt: skip
    segments: int | None = Field(default=None)
    encoding: str | None = Field(default=None, max_length=8)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Attachment(SQLModel, table=True):
    """A file that came with a message; email attachments keep their bytes, others a provider URL."""

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    filename: str | None = Field(default=None, max_length=255)
    content_type: str = Field(max_length=120)
    url: str | None = Field(default=None, max_length=2000)
    size: int | None = Field(default=None)
    data: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


class Label(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("municipality_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    name: str = Field(max_length=60)


class ConversationLabel(SQLModel, table=True):
    conversation_id: int = Field(foreign_key="conversation.id", primary_key=True)
    label_id: int = Field(foreign_key="label.id", primary_key=True, index=True)


class CannedReply(SQLModel, table=True):
    """A prepared answer: a Jinja2 snippet filled with the contact's variables when inserted."""

    __table_args__ = (UniqueConstraint("municipality_id", "title"),)

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    title: str = Field(max_length=120)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ConversationViewer(SQLModel, table=True):
    """Who has a conversation open right now, refreshed by the page while it stays open, and who is writing a reply."""

    conversation_id: int = Field(foreign_key="conversation.id", primary_key=True)
    user_id: int = Field(foreign_key="staffuser.id", primary_key=True)
    seen_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    typing_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class SavedView(SQLModel, table=True):
    """A named filter and search of the list: the owner's own, or (with `team_id`) shared with that team.

    `query` is the list's query string (status=open&q=…), so a view opens exactly as it was saved.
    """

    __tablename__ = "saved_view"

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    owner_id: int = Field(foreign_key="staffuser.id", index=True)
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    name: str = Field(max_length=60)
    query: str = Field(max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class InboxAlertSetting(SQLModel, table=True):
    """How open inbox pages tell one person about new work: browser notifications, a sound (both off by default)."""

    __tablename__ = "inbox_alert_setting"

    user_id: int = Field(foreign_key="staffuser.id", primary_key=True)
    browser: bool = Field(default=False)
    sound: bool = Field(default=False)


class StatusLink(SQLModel, table=True):
    """A one-time link to a request's status page, sent on the request's channel when a citizen asked by reference.

    Only the token's SHA-256 is stored; the link works once (`used_at`) and until `expires_at`.
    """

    __tablename__ = "status_link"

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    token_sha256: str = Field(unique=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
