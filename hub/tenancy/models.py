"""Tables of the tenant: the municipality, its staff, teams, API tokens and channel accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.db import UtcDateTime, utcnow


class Municipality(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, index=True, max_length=64)
    name: str = Field(max_length=200)
    default_region: str = Field(default="DE", max_length=2, description="Region for phone numbers without +.")
    language: str = Field(default="de", max_length=8)
    timezone: str = Field(default="Europe/Berlin", max_length=64)
    reference_prefix: str = Field(default="A", max_length=8)
    preferences: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSON, nullable=False, server_default="{}"),
        description="Overrides of hub.tenancy.preferences.DEFAULTS (keywords, texts, quiet hours, ...).",
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class StaffUser(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("municipality_id", "email"),)

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    email: str = Field(max_length=254)
    name: str = Field(max_length=200)
    role: str = Field(default="staff", max_length=16, description="admin, mayor, staff or viewer")
    team_id: int | None = Field(default=None, foreign_key="team.id", description="The person's department.")
    language: str = Field(default="de", max_length=8)
    active: bool = Field(default=True)
    password_hash: str | None = Field(default=None, max_length=200, description="argon2; None: cannot sign in.")
    totp_secret: str | None = Field(default=None, max_length=64, description="Base32; set: a second factor is asked.")
    failed_logins: int = Field(default=0, description="Failed sign-ins since the last success.")
    locked_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class StaffSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored here.

    A session that passed the password but still owes its TOTP code has `second_factor_pending`.
    """

    id: str = Field(primary_key=True, max_length=64, description="SHA-256 of the cookie's token.")
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    user_id: int = Field(foreign_key="staffuser.id", index=True)
    second_factor_pending: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class PasswordReset(SQLModel, table=True):
    """A one-time password reset link sent by email; only the token's SHA-256 is stored."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="staffuser.id", index=True)
    token_sha256: str = Field(unique=True, max_length=64)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Team(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("municipality_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    name: str = Field(max_length=120)
    first_response_minutes: int | None = Field(default=None, description="Target within office hours.")
    resolution_minutes: int | None = Field(default=None, description="Target within office hours.")
    office_hours: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSON, nullable=False, server_default="{}"),
        description='{"mon": [["08:00", "16:00"]], ...}; empty: the municipality\'s office hours.',
    )


class ApiToken(SQLModel, table=True):
    """A bearer token for /api/v1; only its SHA-256 is stored."""

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    user_id: int = Field(foreign_key="staffuser.id", index=True)
    name: str = Field(max_length=120)
    token_sha256: str = Field(unique=True, index=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UtcDateTime, description="Within a minute.")
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ChannelAccount(SQLModel, table=True):
    """One connected provider account: a Twilio number, a bot, a Facebook page, a mailbox.

    `config` holds what may be shown (numbers, page id, API base URL); `secrets` holds tokens,
    shown only with `rathaus channel list --show-secrets`.
    """

    id: int | None = Field(default=None, primary_key=True)
    municipality_id: int = Field(foreign_key="municipality.id", index=True)
    kind: str = Field(max_length=16, index=True)
    name: str = Field(max_length=120)
    address: str = Field(max_length=254, index=True, description="Number, bot name, page id or mailbox.")
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    secrets: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
