"""video rooms and waiting rooms: the town's video platform, rooms per booking or session, waiting-room entries

Revision ID: 0016
Revises: 0013
Create Date: 2026-12-07 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.db

revision: str = "0016"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consultation_video_platform",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("updated_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["municipality_id"], ["municipality.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("municipality_id"),
    )
    op.create_table(
        "consultation_video_room",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("room_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("starts_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("max_participants", sa.Integer(), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["booking_id"], ["booking.id"]),
        sa.ForeignKeyConstraint(["municipality_id"], ["municipality.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["consultation_session.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("booking_id"),
        sa.UniqueConstraint("session_id"),
    )
    with op.batch_alter_table("consultation_video_room", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consultation_video_room_municipality_id"), ["municipality_id"])
    op.create_table(
        "consultation_waiting_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("queued_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("checked_in_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("called_at", hub.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("called_by_id", sa.Integer(), nullable=True),
        sa.Column("done_at", hub.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("forwarded_from_team_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["booking_id"], ["booking.id"]),
        sa.ForeignKeyConstraint(["called_by_id"], ["staffuser.id"]),
        sa.ForeignKeyConstraint(["forwarded_from_team_id"], ["team.id"]),
        sa.ForeignKeyConstraint(["municipality_id"], ["municipality.id"]),
        sa.ForeignKeyConstraint(["series_id"], ["consultation_series.id"]),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("booking_id"),
    )
    with op.batch_alter_table("consultation_waiting_entry", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consultation_waiting_queue", ["municipality_id", "team_id", "status", "queued_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_consultation_waiting_entry_series_id"), ["series_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("consultation_waiting_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consultation_waiting_entry_series_id"))
        batch_op.drop_index("ix_consultation_waiting_queue")
    op.drop_table("consultation_waiting_entry")
    with op.batch_alter_table("consultation_video_room", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consultation_video_room_municipality_id"))
    op.drop_table("consultation_video_room")
    op.drop_table("consultation_video_platform")
