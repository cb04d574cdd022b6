"""consultation staff: sessions moved off their occurrence, and calendar feed tokens

Revision ID: 0014
Revises: 0011
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.db

revision: str = "0014"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consultation_calendar_feed",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=True),
        sa.Column("host_user_id", sa.Integer(), nullable=True),
        sa.Column("token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["host_user_id"], ["staffuser.id"]),
        sa.ForeignKeyConstraint(["municipality_id"], ["municipality.id"]),
        sa.ForeignKeyConstraint(["series_id"], ["consultation_series.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("host_user_id"),
        sa.UniqueConstraint("series_id"),
        sa.UniqueConstraint("token"),
    )
    with op.batch_alter_table("consultation_calendar_feed", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consultation_calendar_feed_municipality_id"), ["municipality_id"], unique=False
        )
    with op.batch_alter_table("consultation_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("moved_from", hub.db.UtcDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consultation_session", schema=None) as batch_op:
        batch_op.drop_column("moved_from")
    with op.batch_alter_table("consultation_calendar_feed", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consultation_calendar_feed_municipality_id"))
    op.drop_table("consultation_calendar_feed")
