"""open311 clients: the apps that file requests through Open311 GeoReport v2, with the digest of their API key

Revision ID: 0022
Revises: 0020
Create Date: 2026-12-07 17:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.db

revision: str = "0022"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "open311client",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("key_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", hub.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", hub.db.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["municipality_id"], ["municipality.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("open311client", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_open311client_key_sha256"), ["key_sha256"], unique=True)
        batch_op.create_index(batch_op.f("ix_open311client_municipality_id"), ["municipality_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("open311client", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_open311client_municipality_id"))
        batch_op.drop_index(batch_op.f("ix_open311client_key_sha256"))
    op.drop_table("open311client")
