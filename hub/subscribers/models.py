"""Tables of subscriptions: topics and districts per municipality, who subscribed to what, and the consent record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.db import UtcDateTime, utcnow


class Topic(SQLModel, table=True):
    """What a subscriber can ask to hear about (Baustellen, Abfall, Warnungen, ...)."""

    __table_args__ = (UniqueConstraint("municipality_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    key: str = Field(max_length=40, description="Lower-case word used in SMS keywords and the API.")
    name_de: str = Field(max_length=120)
    name_en: str = Field(max_length=120)
    is_warning: bool = Field(default=False, description="Warnings on this topic may go out in quiet hours.")


class District(SQLModel, table=True):
    """An Ortsteil: broadcasts can be targeted at some of them."""

    __table_args__ = (UniqueConstraint("municipality_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    key: str = Field(max_length=40)
    name: str = Field(max_length=120)


class Subscription(SQLModel, table=True):
    """A contact's one subscription: state, language, and the topics and districts chosen.

    state: pending (asked, not yet confirmed), active, stopped (STOP on any channel).
    No districts chosen means the whole municipality.
    """

    __table_args__ = (UniqueConstraint("municipality_id", "contact_id"),)

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    state: str = Field(default="pending", max_length=16, index=True)
    language: str = Field(default="de", max_length=8)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class SubscriptionTopic(SQLModel, table=True):
    subscription_id: int = Field(foreign_key="subscription.id", primary_key=True)
    topic_id: int = Field(foreign_key="topic.id", primary_key=True, index=True)


class SubscriptionDistrict(SQLModel, table=True):
    subscription_id: int = Field(foreign_key="subscription.id", primary_key=True)
    district_id: int = Field(foreign_key="district.id", primary_key=True, index=True)


class ConsentEvent(SQLModel, table=True):
    """Evidence of every change of consent (DSGVO Art. 7(1): the controller must be able to show it).

    action: subscribed, confirmed, topics_changed, stopped, restarted, imported, erased, opted_in (the
    first message on a channel that needs an opt-in before the hub may write unprompted).
    source: keyword, form, telegram, messenger, email_link, topics_link, import, api, provider_error.
    evidence: message id, client IP, import file and line, provider error code.
    """

    __table_args__ = (Index("ix_consentevent_contact", "contact_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    contact_id: int = Field(foreign_key="contact.id")
    subscription_id: int | None = Field(default=None, foreign_key="subscription.id")
    action: str = Field(max_length=24)
    channel_kind: str | None = Field(default=None, max_length=16)
    source: str = Field(max_length=24)
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class PhoneVerification(SQLModel, table=True):
    """A one-time code sent by SMS to prove a phone number (web form, or a messenger adding a phone).

    Only the code's hash is kept; `request` holds what the citizen asked for, applied on success.
    """

    __table_args__ = (Index("ix_phoneverification_phone", "municipality_id", "phone", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    phone: str = Field(max_length=20)
    code_hash: str = Field(max_length=128)
    client_ip: str | None = Field(default=None, max_length=64, index=True)
    request: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    attempts: int = Field(default=0)
    sends: int = Field(default=1)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_sent_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    verified_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
