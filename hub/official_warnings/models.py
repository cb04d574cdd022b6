"""Tables of official warnings: a town's relay settings, and each official warning version the town has seen."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.db import UtcDateTime, utcnow

# What becomes of an official warning, per source and severity.
ACTIONS = ("ignore", "draft", "send")


class WarningRelay(SQLModel, table=True):
    """A town's relay of official warnings: its regional key, what to do with each, and the last poll.

    `actions` maps a source (MOWAS, DWD, LHP, POLICE, KATWARN, BIWAPP) to a map of CAP severity to
    an action; what it does not name gets `default_action`. `etag` and `last_modified` are the
    validators of the last dashboard taken in whole, for the next conditional request.
    """

    __tablename__ = "warning_relay"

    municipality_id: int = Field(foreign_key="municipality.id", primary_key=True)
    ars: str = Field(max_length=12, description="The town's 12-digit regional key (Amtlicher Regionalschlüssel).")
    actions: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    default_action: str = Field(default="draft", max_length=8)
    etag: str | None = Field(default=None, max_length=200)
    last_modified: str | None = Field(default=None, max_length=64)
    polled_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_error: str | None = Field(default=None, max_length=500)


class OfficialWarning(SQLModel, table=True):
    """One version of an official warning as the town took it, and the broadcast it became.

    Unique per (town, official id, version): the row is claimed in the transaction that creates the
    broadcast, so a version is relayed once, however often and by however many beats it is polled.
    outcome: outside (not for the town), ignored (the town's setting), drafted, sent, unmatched (an
    all-clear for a warning the hub never relayed), withdrawn (a cancellation that withdrew the drafts
    of a warning nobody received, instead of an all-clear).
    """

    __tablename__ = "official_warning"
    __table_args__ = (UniqueConstraint("municipality_id", "official_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    official_id: str = Field(max_length=200)
    version: int
    provider: str = Field(max_length=16)
    msg_type: str = Field(max_length=8)
    status: str = Field(max_length=16)
    sender: str = Field(max_length=200)
    sent: datetime = Field(sa_type=UtcDateTime)
    severity: str = Field(max_length=16)
    urgency: str = Field(max_length=16)
    certainty: str = Field(max_length=16)
    event: str = Field(max_length=200)
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    headline: str = Field(max_length=500)
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    instruction: str = Field(default="", sa_column=Column(Text, nullable=False))
    sender_name: str = Field(default="", max_length=200)
    web: str | None = Field(default=None, max_length=500)
    areas: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    region_keys: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    outcome: str = Field(max_length=16)
    broadcast_id: int | None = Field(default=None, foreign_key="broadcast.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
