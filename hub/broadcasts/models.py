"""Tables of broadcasts: the message, its targeting and approval, one delivery per recipient, survey answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.db import UtcDateTime, utcnow
from hub.i18n import N_

BROADCAST_KINDS = ("announcement", "warning", "all_clear", "survey", "invitation")
# CAP's severity levels (OASIS CAP 1.2, <severity>), for warnings.
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor")
# German msgids for what staff read (pages, reports, errors); shown translated.
KIND_LABELS = {
    "announcement": N_("Mitteilung"), "warning": N_("Warnung"), "all_clear": N_("Entwarnung"),
    "survey": N_("Umfrage"), "invitation": N_("Einladung"),
}  # fmt: skip
SEVERITY_LABELS = {"Extreme": N_("Extrem"), "Severe": N_("Schwer"), "Moderate": N_("Mäßig"), "Minor": N_("Gering")}


class Broadcast(SQLModel, table=True):
    """One message to many subscribers.

    status: draft -> pending_approval -> approved (-> scheduled) -> sending -> completed;
    paused and cancelled can interrupt sending. `texts` maps a language to
    {"body": ..., "subject": ...}; German is required, English optional.
    Targeting: topics and districts with "any"/"all" matching, and the channel kinds to use
    (empty lists mean no restriction).
    """

    __table_args__ = (Index("ix_broadcast_due", "status", "send_at"),)

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    kind: str = Field(max_length=16)
    severity: str | None = Field(default=None, max_length=16)
    follows_id: int | None = Field(
        default=None, foreign_key="broadcast.id", description="The warning an all-clear ends."
    )
    title: str = Field(max_length=200)
    texts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    topic_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    topic_match: str = Field(default="any", max_length=4)
    district_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    district_match: str = Field(default="any", max_length=4)
    channel_kinds: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    fallback: bool = Field(
        default=False,
        sa_column_kwargs={"server_default": "0"},
        description="When a channel fails a recipient for good, try their next channel.",
    )
    options: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False), description="Survey answers, 2 to 9."
    )
    event: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False), description="Invitation: when and where."
    )
    event_starts_at: datetime | None = Field(
        default=None, sa_type=UtcDateTime, description="Invitation: when the event begins; with it, a calendar entry."
    )
    event_ends_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    event_sequence: int = Field(
        default=0,
        sa_column_kwargs={"server_default": "0"},
        description="The calendar entry's version (iCalendar SEQUENCE), one up with each change of time or place.",
    )
    calendar_token: str | None = Field(
        default=None,
        max_length=32,
        unique=True,
        index=True,
        description="Invitation: the key of its public calendar file.",
    )
    closes_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    status: str = Field(default="draft", max_length=20, index=True)
    send_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_by_id: int | None = Field(default=None, foreign_key="staffuser.id")
    approved_by_id: int | None = Field(default=None, foreign_key="staffuser.id")
    approved_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    expanded_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    progress_at: datetime | None = Field(
        default=None,
        sa_type=UtcDateTime,
        description="Last sign of work while sending (expansion, dispatch, a batch): the sweeper's heartbeat.",
    )
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    recipient_count: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Delivery(SQLModel, table=True):
    """One broadcast to one contact on one channel; unique per (broadcast, contact).

    state: queued -> claimed (by a batch) -> sending (in the provider call) -> sent ->
    delivered -> read (where the channel reports it: WhatsApp), or failed, skipped (e.g. outside
    Messenger's window), opted_out, cancelled, uncertain (a crash left it unknowable).
    """

    __table_args__ = (
        UniqueConstraint("broadcast_id", "contact_id"),
        Index("ix_delivery_work", "broadcast_id", "state", "id"),
        Index("ix_delivery_provider", "channel_account_id", "provider_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    broadcast_id: int = Field(foreign_key="broadcast.id")
    contact_id: int = Field(foreign_key="contact.id", index=True)
    channel_account_id: int = Field(foreign_key="channelaccount.id")
    address: str = Field(max_length=254)
    language: str = Field(default="de", max_length=8)
    state: str = Field(default="queued", max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    claimed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    provider_id: str | None = Field(default=None, max_length=300)
    error_code: str | None = Field(default=None, max_length=32)
    error_message: str | None = Field(default=None, max_length=500)
    segments: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class SurveyAnswer(SQLModel, table=True):
    """A contact's answer to a survey (or RSVP to an invitation); a later answer replaces the earlier."""

    __table_args__ = (UniqueConstraint("broadcast_id", "contact_id"),)

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    broadcast_id: int = Field(foreign_key="broadcast.id", index=True)
    contact_id: int = Field(foreign_key="contact.id")
    option_index: int = Field(description="0-based index into Broadcast.options.")
    channel_kind: str = Field(max_length=16)
    answered_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
