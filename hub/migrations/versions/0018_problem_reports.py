"""problem reports: categories per town, reports beside their conversations, their photos, district shapes

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.db

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "districtshape",
        sa.Column("district_id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("geometry", sa.JSON(), nullable=False),
        sa.Column("updated_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["district_id"],
            ["district.id"],
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["municipality.id"],
        ),
        sa.PrimaryKeyConstraint("district_id"),
    )
    with op.batch_alter_table("districtshape", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_districtshape_municipality_id"), ["municipality_id"], unique=False)

    op.create_table(
        "problemcategory",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("name_de", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("name_en", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("labels", sa.JSON(), server_default="[]", nullable=False),
        sa.Column("response_hours", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["municipality.id"],
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["team.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("municipality_id", "key"),
    )
    with op.batch_alter_table("problemcategory", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_problemcategory_municipality_id"), ["municipality_id"], unique=False)

    op.create_table(
        "problemreport",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("district_id", sa.Integer(), nullable=True),
        sa.Column("public_status", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("photos_released", sa.Boolean(), nullable=False),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        sa.Column("created_at", hub.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["problemcategory.id"],
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
        ),
        sa.ForeignKeyConstraint(
            ["district_id"],
            ["district.id"],
        ),
        sa.ForeignKeyConstraint(
            ["merged_into_id"],
            ["problemreport.id"],
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["municipality.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("conversation_id"),
    )
    with op.batch_alter_table("problemreport", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_problemreport_category_id"), ["category_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_problemreport_district_id"), ["district_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_problemreport_merged_into_id"), ["merged_into_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_problemreport_municipality_id"), ["municipality_id"], unique=False)
        batch_op.create_index("ix_problemreport_place", ["municipality_id", "lat", "lon"], unique=False)

    op.create_table(
        "problemphoto",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("attachment_id", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("display", sa.LargeBinary(), nullable=False),
        sa.Column("display_type", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["attachment_id"],
            ["attachment.id"],
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["municipality.id"],
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["problemreport.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("attachment_id"),
    )
    with op.batch_alter_table("problemphoto", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_problemphoto_municipality_id"), ["municipality_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_problemphoto_report_id"), ["report_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("problemphoto", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_problemphoto_report_id"))
        batch_op.drop_index(batch_op.f("ix_problemphoto_municipality_id"))

    op.drop_table("problemphoto")
    with op.batch_alter_table("problemreport", schema=None) as batch_op:
        batch_op.drop_index("ix_problemreport_place")
        batch_op.drop_index(batch_op.f("ix_problemreport_municipality_id"))
        batch_op.drop_index(batch_op.f("ix_problemreport_merged_into_id"))
        batch_op.drop_index(batch_op.f("ix_problemreport_district_id"))
        batch_op.drop_index(batch_op.f("ix_problemreport_category_id"))

    op.drop_table("problemreport")
    with op.batch_alter_table("problemcategory", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_problemcategory_municipality_id"))

    op.drop_table("problemcategory")
    with op.batch_alter_table("districtshape", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_districtshape_municipality_id"))

    op.drop_table("districtshape")
