"""The audit trail: every consequential action by staff (or the system) as one row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from hub.db import UtcDateTime, utcnow


class AuditEvent(SQLModel, table=True):
    __table_args__ = (Index("ix_auditevent_object", "object_type", "object_id"),)

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    actor_id: int | None = Field(default=None, foreign_key="staffuser.id", description="None: the system itself.")
    action: str = Field(max_length=64, description="e.g. broadcast.approved, contact.erased")
    object_type: str = Field(max_length=32)
    object_id: int | None = Field(default=None)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
