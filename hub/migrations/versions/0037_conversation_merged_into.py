"""conversation merged into: the case a merged-away conversation continues in

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-08 01:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_conversation_merged_into_id", "conversation", ["merged_into_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_constraint("fk_conversation_merged_into_id", type_="foreignkey")
        batch_op.drop_column("merged_into_id")
