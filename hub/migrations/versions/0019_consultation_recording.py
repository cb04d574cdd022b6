"""consultation recording: a held session's recording link and the announcement that told the series' topic

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("consultation_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recording_url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
        batch_op.add_column(sa.Column("recording_broadcast_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_consultation_session_recording_broadcast", "broadcast", ["recording_broadcast_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("consultation_session", schema=None) as batch_op:
        batch_op.drop_constraint("fk_consultation_session_recording_broadcast", type_="foreignkey")
        batch_op.drop_column("recording_broadcast_id")
        batch_op.drop_column("recording_url")
