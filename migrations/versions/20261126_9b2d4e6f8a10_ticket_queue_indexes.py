"""ticket queues: open tickets per owning and per handling unit by due time

Revision ID: 9b2d4e6f8a10
Revises: 5f3a9c1d7e42
Create Date: 2026-11-26 00:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "9b2d4e6f8a10"
down_revision = "5f3a9c1d7e42"
branch_labels = None
depends_on = None

OPEN = "state IN ('new', 'open', 'pending', 'on_hold')"


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        for col in ("owning_unit", "handling_unit"):
            batch_op.create_index(
                f"ix_tickets_open_{col}_due",
                [f"{col}_id", "resolution_due", "id"],
                unique=False,
                postgresql_where=sa.text(OPEN),
                sqlite_where=sa.text(OPEN),
            )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        for col in ("handling_unit", "owning_unit"):
            batch_op.drop_index(f"ix_tickets_open_{col}_due")
