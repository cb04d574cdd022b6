"""consultation offers: what a citizen was offered by SMS, messenger or mail, to match their answer

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consultation_offer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("channel_account_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("choices", sa.JSON(), server_default="[]", nullable=False),
        sa.Column("concern", sa.Text(), nullable=True),
        sa.Column("expires_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["channel_account_id"], ["channelaccount.id"]),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"]),
        sa.ForeignKeyConstraint(["municipality_id"], ["municipality.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contact_id", "channel_account_id", name="uq_consultation_offer_per_channel"),
    )
    with op.batch_alter_table("consultation_offer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consultation_offer_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_consultation_offer_municipality_id"), ["municipality_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("consultation_offer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consultation_offer_municipality_id"))
        batch_op.drop_index(batch_op.f("ix_consultation_offer_contact_id"))

    op.drop_table("consultation_offer")
