"""A contact is one citizen; each identity is one address of theirs on one kind of channel."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.db import UtcDateTime, utcnow

# Where a contact's name came from (Contact.name_origin). A name from a channel follows what the
# channel shows; one a citizen typed or staff set is never replaced by a channel's.
NAME_FROM_CHANNEL = "channel"
NAME_FROM_CITIZEN = "citizen"
NAME_FROM_STAFF = "staff"


class Contact(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    display_name: str | None = Field(default=None, max_length=200)
    name_origin: str | None = Field(
        default=None, max_length=16, description="channel, citizen or staff; None for names older than the field"
    )
    language: str = Field(default="de", max_length=8)
    merged_into_id: int | None = Field(default=None, foreign_key="contact.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ContactIdentity(SQLModel, table=True):
    """An address: E.164 phone, Telegram chat id, Facebook page-scoped id or email address."""

    __table_args__ = (UniqueConstraint("municipality_id", "kind", "address"),)

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    kind: str = Field(max_length=16)
    address: str = Field(max_length=254)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
