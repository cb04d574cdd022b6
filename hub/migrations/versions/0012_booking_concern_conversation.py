"""a booking links the conversation its concern opened in the inbox

Revision ID: 0012
Revises: 0014
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a nullable column with its reference in place; batch mode would rebuild the
        # table, and the partial unique index of live bookings with it.
        op.execute("ALTER TABLE booking ADD COLUMN conversation_id INTEGER REFERENCES conversation (id)")
        return
    op.add_column("booking", sa.Column("conversation_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        "fk_booking_conversation_id_conversation", "booking", "conversation", ["conversation_id"], ["id"]
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE booking DROP COLUMN conversation_id")  # SQLite 3.35 and later
        return
    op.drop_constraint("fk_booking_conversation_id_conversation", "booking", type_="foreignkey")
    op.drop_column("booking", "conversation_id")
