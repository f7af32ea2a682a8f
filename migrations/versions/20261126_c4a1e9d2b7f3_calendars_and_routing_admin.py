"""calendars and routing rules admin: the 7×24 flag of a calendar, a rule's note

Revision ID: c4a1e9d2b7f3
Revises: c3f1a0d2e5b7
Create Date: 2026-11-26 00:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c4a1e9d2b7f3"
down_revision = "c3f1a0d2e5b7"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("always_open", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("routing_rules", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("note", sa.String(length=200), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("routing_rules", schema=None) as batch_op:
        batch_op.drop_column("note")
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.drop_column("always_open")
