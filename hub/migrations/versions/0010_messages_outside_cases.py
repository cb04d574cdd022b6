"""commands and survey answers are kept on the contact, outside any case

Revision ID: 0010
Revises: 0006
Create Date: 2026-12-07 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# SQLite's batch mode rebuilds the table, and dropping the old one drops the triggers that keep
# the full-text table of 0004 in step; the ids stay, so only the triggers need making again.
_SEARCH_TRIGGERS = (
    "CREATE TRIGGER message_search_insert AFTER INSERT ON message BEGIN "
    "INSERT INTO message_search(rowid, body) VALUES (new.id, new.body); END",
    "CREATE TRIGGER message_search_delete AFTER DELETE ON message BEGIN "
    "INSERT INTO message_search(message_search, rowid, body) VALUES ('delete', old.id, old.body); END",
    "CREATE TRIGGER message_search_update AFTER UPDATE OF body ON message BEGIN "
    "INSERT INTO message_search(message_search, rowid, body) VALUES ('delete', old.id, old.body); "
    "INSERT INTO message_search(rowid, body) VALUES (new.id, new.body); END",
)


def _restore_search_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in _SEARCH_TRIGGERS:
            op.execute(trigger)


def upgrade() -> None:
    with op.batch_alter_table("message") as batch_op:
        batch_op.add_column(
            sa.Column(
                "contact_id", sa.Integer(), sa.ForeignKey("contact.id", name="fk_message_contact_id"), nullable=True
            )
        )
        batch_op.alter_column("conversation_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_index("ix_message_contact", ["contact_id", "created_at"], unique=False)
        batch_op.create_check_constraint(
            "ck_message_case_or_contact", "conversation_id IS NOT NULL OR contact_id IS NOT NULL"
        )
    _restore_search_triggers()


def downgrade() -> None:
    # The old schema has no place for a message outside a case: those messages go.
    outside = "SELECT id FROM message WHERE conversation_id IS NULL"
    op.execute(f"DELETE FROM attachment WHERE message_id IN ({outside})")  # noqa: S608 (constant text)
    op.execute("DELETE FROM message WHERE conversation_id IS NULL")
    with op.batch_alter_table("message") as batch_op:
        batch_op.drop_constraint("ck_message_case_or_contact", type_="check")
        batch_op.drop_index("ix_message_contact")
        batch_op.alter_column("conversation_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("contact_id")
    _restore_search_triggers()
