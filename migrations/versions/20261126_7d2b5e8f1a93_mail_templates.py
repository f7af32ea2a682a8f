"""mail: administrators' wording of outgoing mail per kind and language

Revision ID: 7d2b5e8f1a93
Revises: 5e2b9d71c4a8
Create Date: 2026-11-26 00:23:31.875559
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "7d2b5e8f1a93"
down_revision = "5e2b9d71c4a8"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_templates",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("locale", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", "locale", name=op.f("pk_mail_templates")),
    )


def downgrade() -> None:
    op.drop_table("mail_templates")
