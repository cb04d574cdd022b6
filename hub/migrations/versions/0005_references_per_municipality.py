"""references are unique per municipality

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 15:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite's copy of the table has the old constraint without a name; this names it on reflection.
_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _old_constraint_name() -> str:
    return "conversation_reference_key" if op.get_bind().dialect.name == "postgresql" else "uq_conversation_reference"


def upgrade() -> None:
    with op.batch_alter_table("conversation", naming_convention=_NAMING) as batch_op:
        batch_op.drop_constraint(_old_constraint_name(), type_="unique")
        batch_op.create_unique_constraint("uq_conversation_municipality_reference", ["municipality_id", "reference"])
        batch_op.create_index("ix_conversation_reference", ["reference"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("conversation", naming_convention=_NAMING) as batch_op:
        batch_op.drop_index("ix_conversation_reference")
        batch_op.drop_constraint("uq_conversation_municipality_reference", type_="unique")
        batch_op.create_unique_constraint(_old_constraint_name(), ["reference"])
