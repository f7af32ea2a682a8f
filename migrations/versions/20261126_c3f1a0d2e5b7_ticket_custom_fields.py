"""ticket custom fields: definitions per category and typed, indexed values

Revision ID: c3f1a0d2e5b7
Revises: 30d16b632a37
Create Date: 2026-11-26 00:02:07.332549
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c3f1a0d2e5b7"
down_revision = "30d16b632a37"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "ticket_fields",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("category_code", sa.String(length=40), nullable=True),
        sa.Column("label_zh", sa.String(length=100), nullable=False),
        sa.Column("label_en", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "type IN ('text', 'number', 'date', 'choice')", name=op.f("ck_ticket_fields_type")
        ),
        sa.ForeignKeyConstraint(
            ["category_code"],
            ["ticket_categories.code"],
            name=op.f("fk_ticket_fields_category_code_ticket_categories"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_fields")),
        sa.UniqueConstraint("key", name=op.f("uq_ticket_fields_key")),
    )
    with op.batch_alter_table("ticket_fields", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ticket_fields_category_code"), ["category_code"], unique=False
        )

    op.create_table(
        "ticket_field_values",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("field_id", sa.Integer(), nullable=False),
        sa.Column("value_text", sa.String(length=500), nullable=True),
        sa.Column("value_number", sa.Numeric(precision=20, scale=4), nullable=True),
        sa.Column("value_date", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["field_id"],
            ["ticket_fields.id"],
            name=op.f("fk_ticket_field_values_field_id_ticket_fields"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_field_values_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ticket_id", "field_id", name=op.f("pk_ticket_field_values")),
    )
    with op.batch_alter_table("ticket_field_values", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ticket_field_values_date", ["field_id", "value_date"], unique=False
        )
        batch_op.create_index(
            "ix_ticket_field_values_number", ["field_id", "value_number"], unique=False
        )
        batch_op.create_index(
            "ix_ticket_field_values_text", ["field_id", "value_text"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("ticket_field_values", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_field_values_text")
        batch_op.drop_index("ix_ticket_field_values_number")
        batch_op.drop_index("ix_ticket_field_values_date")

    op.drop_table("ticket_field_values")
    with op.batch_alter_table("ticket_fields", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_fields_category_code"))

    op.drop_table("ticket_fields")
