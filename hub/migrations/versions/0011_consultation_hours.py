"""consultation hours: series, their sessions and slots, and bookings

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consultation_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("host_user_id", sa.Integer(), nullable=True),
        sa.Column("host_team_id", sa.Integer(), nullable=True),
        sa.Column("location", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("start_time", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("end_time", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("rrule", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("exdates", sa.JSON(), server_default="[]", nullable=False),
        sa.Column("rdates", sa.JSON(), server_default="[]", nullable=False),
        sa.Column("slot_minutes", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("opens_days_before", sa.Integer(), nullable=False),
        sa.Column("closes_hours_before", sa.Integer(), nullable=False),
        sa.Column("questions_allowed", sa.Boolean(), nullable=False),
        sa.Column("reminder_hours", sa.JSON(), server_default="[24, 1]", nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["host_team_id"],
            ["team.id"],
        ),
        sa.ForeignKeyConstraint(
            ["host_user_id"],
            ["staffuser.id"],
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["municipality.id"],
        ),
        sa.ForeignKeyConstraint(
            ["topic_id"],
            ["topic.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("consultation_series", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consultation_series_municipality_id"), ["municipality_id"], unique=False)

    op.create_table(
        "consultation_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["municipality.id"],
        ),
        sa.ForeignKeyConstraint(
            ["series_id"],
            ["consultation_series.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("series_id", "starts_at", name="uq_consultation_session_start"),
    )
    with op.batch_alter_table("consultation_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consultation_session_municipality_id"), ["municipality_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_consultation_session_series_id"), ["series_id"], unique=False)

    op.create_table(
        "consultation_slot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["consultation_session.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id", "starts_at", name="uq_consultation_slot_start"),
    )
    with op.batch_alter_table("consultation_slot", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consultation_slot_session_id"), ["session_id"], unique=False)

    op.create_table(
        "booking",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("concern", sa.Text(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("staff_note", sa.Text(), nullable=True),
        sa.Column("created_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", hub.db.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["municipality.id"],
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["consultation_session.id"],
        ),
        sa.ForeignKeyConstraint(
            ["slot_id"],
            ["consultation_slot.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("municipality_id", "reference", name="uq_booking_reference"),
    )
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_booking_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_booking_municipality_id"), ["municipality_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_booking_session_id"), ["session_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_booking_slot_id"), ["slot_id"], unique=False)
        batch_op.create_index(
            "uq_booking_live_per_session",
            ["session_id", "contact_id"],
            unique=True,
            postgresql_where=sa.text("status = 'booked'"),
            sqlite_where=sa.text("status = 'booked'"),
        )

    op.create_table(
        "booking_reminder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("hours_before", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["booking_id"], ["booking.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("booking_id", "hours_before", name="uq_booking_reminder_once"),
    )
    with op.batch_alter_table("booking_reminder", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_booking_reminder_booking_id"), ["booking_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("booking_reminder", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_booking_reminder_booking_id"))

    op.drop_table("booking_reminder")
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_booking_live_per_session",
            postgresql_where=sa.text("status = 'booked'"),
            sqlite_where=sa.text("status = 'booked'"),
        )
        batch_op.drop_index(batch_op.f("ix_booking_slot_id"))
        batch_op.drop_index(batch_op.f("ix_booking_session_id"))
        batch_op.drop_index(batch_op.f("ix_booking_municipality_id"))
        batch_op.drop_index(batch_op.f("ix_booking_contact_id"))

    op.drop_table("booking")
    with op.batch_alter_table("consultation_slot", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consultation_slot_session_id"))

    op.drop_table("consultation_slot")
    with op.batch_alter_table("consultation_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consultation_session_series_id"))
        batch_op.drop_index(batch_op.f("ix_consultation_session_municipality_id"))

    op.drop_table("consultation_session")
    with op.batch_alter_table("consultation_series", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consultation_series_municipality_id"))

    op.drop_table("consultation_series")
