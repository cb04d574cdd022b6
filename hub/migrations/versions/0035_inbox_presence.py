"""inbox presence: when a colleague with a conversation open last wrote in its reply box; each person's alerts

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-08 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversationviewer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("typing_at", hub.db.UtcDateTime(timezone=True), nullable=True))
    op.create_table(
        "inbox_alert_setting",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("browser", sa.Boolean(), nullable=False),
        sa.Column("sound", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["staffuser.id"]),
        sa.PrimaryKeyConstraint("user_id"),
    )


def downgrade() -> None:
    op.drop_table("inbox_alert_setting")
    with op.batch_alter_table("conversationviewer", schema=None) as batch_op:
        batch_op.drop_column("typing_at")
