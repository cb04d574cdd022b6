"""API tokens show when they were last used

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 01:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("apitoken") as batch_op:
        batch_op.add_column(sa.Column("last_used_at", hub.db.UtcDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("apitoken") as batch_op:
        batch_op.drop_column("last_used_at")
