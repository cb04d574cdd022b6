"""official warnings: a town's relay settings and each official warning version it took, once

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.db

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "warning_relay",
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("ars", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("default_action", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("etag", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("last_modified", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("polled_at", hub.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["municipality.id"],
        ),
        sa.PrimaryKeyConstraint("municipality_id"),
    )
    op.create_table(
        "official_warning",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("official_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("msg_type", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("sender", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("sent", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("severity", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("urgency", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("certainty", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("event", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("headline", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("instruction", sa.Text(), nullable=False),
        sa.Column("sender_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("web", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("areas", sa.JSON(), nullable=False),
        sa.Column("region_keys", sa.JSON(), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=True),
        sa.Column("created_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcast.id"],
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["municipality.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("municipality_id", "official_id", "version"),
    )
    with op.batch_alter_table("official_warning", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_official_warning_broadcast_id"), ["broadcast_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_official_warning_municipality_id"), ["municipality_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("official_warning", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_official_warning_municipality_id"))
        batch_op.drop_index(batch_op.f("ix_official_warning_broadcast_id"))

    op.drop_table("official_warning")
    op.drop_table("warning_relay")
