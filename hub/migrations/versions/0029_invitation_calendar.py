"""invitation calendar: an invitation's start and end, its calendar version, and the key of its public calendar file

Revision ID: 0029
Revises: 0027
Create Date: 2026-12-08 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.db

revision: str = "0029"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("broadcast", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_starts_at", hub.db.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("event_ends_at", hub.db.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("event_sequence", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("calendar_token", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_broadcast_calendar_token"), ["calendar_token"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("broadcast", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_broadcast_calendar_token"))
        batch_op.drop_column("calendar_token")
        batch_op.drop_column("event_sequence")
        batch_op.drop_column("event_ends_at")
        batch_op.drop_column("event_starts_at")
