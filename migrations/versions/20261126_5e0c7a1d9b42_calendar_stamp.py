"""calendar stamp: a random token renewed on every change of a calendar, so that a
compiled calendar cached by (id, version, stamp) can never be served for another calendar
that got the same id and version (an id reused after a delete, a rolled-back change)

Revision ID: 5e0c7a1d9b42
Revises: 5e7c2a9d41b3
Create Date: 2026-11-26 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "5e0c7a1d9b42"
down_revision = "5e7c2a9d41b3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows share "" — harmless: their ids differ, and every later change or new
    # row gets a random stamp.
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("stamp", sa.String(length=32), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.drop_column("stamp")
