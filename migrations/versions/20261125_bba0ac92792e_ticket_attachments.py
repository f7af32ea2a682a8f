"""ticket attachments

Revision ID: bba0ac92792e
Revises: eb7865c82530
Create Date: 2026-11-25 21:46:50.038745
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "bba0ac92792e"
down_revision = "eb7865c82530"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ticket_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("content_type", sa.String(length=120), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_attachments_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_attachments")),
    )
    with op.batch_alter_table("ticket_attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ticket_attachments_ticket_id"), ["ticket_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ticket_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_attachments_ticket_id"))

    op.drop_table("ticket_attachments")
