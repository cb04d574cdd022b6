"""The client apps that may file requests through Open311, each with its own API key (only its SHA-256 is stored)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from hub.db import UtcDateTime, utcnow


class Open311Client(SQLModel, table=True):
    """An app (a town's app, a regional portal) that files requests for one town; admins issue and revoke its key."""

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    name: str = Field(max_length=120)
    key_sha256: str = Field(unique=True, index=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
