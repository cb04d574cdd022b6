"""saved views: a clerk's named filters of the inbox list, personal or shared with a team

Revision ID: 0027
Revises: 0025
Create Date: 2026-12-07 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.db

revision: str = "0027"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "saved_view",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("query", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["municipality_id"], ["municipality.id"]),
        sa.ForeignKeyConstraint(["owner_id"], ["staffuser.id"]),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("saved_view", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_saved_view_municipality_id"), ["municipality_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_saved_view_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_saved_view_team_id"), ["team_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("saved_view", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_saved_view_team_id"))
        batch_op.drop_index(batch_op.f("ix_saved_view_owner_id"))
        batch_op.drop_index(batch_op.f("ix_saved_view_municipality_id"))
    op.drop_table("saved_view")
