"""portal api tokens: a portal session is a browser's (cookie) or an API client's (Bearer)

Revision ID: 5e7c2a9d41b3
Revises: 3d8822e27541
Create Date: 2026-11-26 03:25:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "5e7c2a9d41b3"
down_revision = "3d8822e27541"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("portal_sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=10), server_default="browser", nullable=False)
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_portal_sessions_kind"), "kind IN ('browser', 'api')"
        )


def downgrade() -> None:
    op.execute("DELETE FROM portal_sessions WHERE kind = 'api'")
    with op.batch_alter_table("portal_sessions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_portal_sessions_kind"), type_="check")
        batch_op.drop_column("kind")
