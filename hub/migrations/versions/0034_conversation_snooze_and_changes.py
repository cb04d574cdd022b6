"""conversation snooze and changes: the Wiedervorlage moment, and when status or assignment last changed (for live lists)

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 23:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("snoozed_until", hub.db.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("changed_at", hub.db.UtcDateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_conversation_changed", ["municipality_id", "changed_at"], unique=False)
        batch_op.create_index("ix_conversation_snoozed", ["municipality_id", "snoozed_until"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_snoozed")
        batch_op.drop_index("ix_conversation_changed")
        batch_op.drop_column("changed_at")
        batch_op.drop_column("snoozed_until")
