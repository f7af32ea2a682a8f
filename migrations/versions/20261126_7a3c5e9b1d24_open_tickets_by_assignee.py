"""tickets: open work per assignee and priority (the least-loaded agent of routing)

Revision ID: 7a3c5e9b1d24
Revises: 5e0c7a1d9b42
Create Date: 2026-11-26 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "7a3c5e9b1d24"
down_revision = "5e0c7a1d9b42"
branch_labels = None
depends_on = None

OPEN = "state IN ('new', 'open', 'pending', 'on_hold')"


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tickets_open_assignee",
            ["assignee_id", "priority"],
            unique=False,
            postgresql_where=sa.text(OPEN),
            sqlite_where=sa.text(OPEN),
        )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_open_assignee")
