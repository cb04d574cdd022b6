"""template purposes: what an outbound message is for, and why a reminder or feedback request was not sent

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 17:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
    for table in ("booking_reminder", "feedback_request"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("not_sent", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True))


def downgrade() -> None:
    for table in ("feedback_request", "booking_reminder"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("not_sent")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("purpose")
