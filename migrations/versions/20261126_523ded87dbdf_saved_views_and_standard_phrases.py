"""saved views and standard phrases

Revision ID: 523ded87dbdf
Revises: 0683a64ab12d
Create Date: 2026-11-26 00:01:42.207262
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "523ded87dbdf"
down_revision = "0683a64ab12d"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "phrases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(kind = 'unit') = (unit_id IS NOT NULL)",
            name=op.f("ck_phrases_unit_only_for_unit_phrases"),
        ),
        sa.CheckConstraint("kind IN ('personal', 'unit', 'global')", name=op.f("ck_phrases_kind")),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["staff.id"], name=op.f("fk_phrases_owner_id_staff"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_phrases_unit_id_units"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phrases")),
    )
    with op.batch_alter_table("phrases", schema=None) as batch_op:
        batch_op.create_index("ix_phrases_owner_id", ["owner_id"], unique=False)
        batch_op.create_index("ix_phrases_unit_id", ["unit_id"], unique=False)

    op.create_table(
        "ticket_views",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["staff.id"],
            name=op.f("fk_ticket_views_owner_id_staff"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["units.id"],
            name=op.f("fk_ticket_views_unit_id_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_views")),
    )
    with op.batch_alter_table("ticket_views", schema=None) as batch_op:
        batch_op.create_index("ix_ticket_views_owner_id", ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ticket_views_unit_id"), ["unit_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("ticket_views", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_views_unit_id"))
        batch_op.drop_index("ix_ticket_views_owner_id")

    op.drop_table("ticket_views")
    with op.batch_alter_table("phrases", schema=None) as batch_op:
        batch_op.drop_index("ix_phrases_unit_id")
        batch_op.drop_index("ix_phrases_owner_id")

    op.drop_table("phrases")
