"""tiering: rulesets, runs, proposals, tier history

Revision ID: 8ccb2720824c
Revises: 2dbc9ce02f00
Create Date: 2026-11-25 20:44:27.502582
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "8ccb2720824c"
down_revision = "2dbc9ce02f00"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tiering_rulesets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tiering_rulesets")),
        sa.UniqueConstraint("version", name=op.f("uq_tiering_rulesets_version")),
    )
    op.create_table(
        "tiering_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ruleset_id", sa.Integer(), nullable=True),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("is_preview", sa.Boolean(), nullable=False),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied_by", sa.String(length=100), nullable=True),
        sa.CheckConstraint(
            "status IN ('dry_run', 'applied', 'discarded')", name=op.f("ck_tiering_runs_status")
        ),
        sa.ForeignKeyConstraint(
            ["ruleset_id"],
            ["tiering_rulesets.id"],
            name=op.f("fk_tiering_runs_ruleset_id_tiering_rulesets"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tiering_runs")),
    )
    op.create_table(
        "tier_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("from_tier", sa.String(length=1), nullable=True),
        sa.Column("to_tier", sa.String(length=1), nullable=True),
        sa.Column("from_level", sa.String(length=4), nullable=True),
        sa.Column("to_level", sa.String(length=4), nullable=True),
        sa.Column("from_unit_id", sa.Integer(), nullable=True),
        sa.Column("to_unit_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=600), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_tier_history_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["tiering_runs.id"],
            name=op.f("fk_tier_history_run_id_tiering_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tier_history")),
    )
    with op.batch_alter_table("tier_history", schema=None) as batch_op:
        batch_op.create_index("ix_tier_history_customer_at", ["customer_id", "at"], unique=False)

    op.create_table(
        "tiering_proposals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("old_tier", sa.String(length=1), nullable=True),
        sa.Column("new_tier", sa.String(length=1), nullable=False),
        sa.Column("old_level", sa.String(length=4), nullable=True),
        sa.Column("new_level", sa.String(length=4), nullable=True),
        sa.Column("old_unit_id", sa.Integer(), nullable=False),
        sa.Column("new_unit_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("revenue_12m", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("is_important", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_tiering_proposals_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["tiering_runs.id"],
            name=op.f("fk_tiering_proposals_run_id_tiering_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tiering_proposals")),
    )
    with op.batch_alter_table("tiering_proposals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tiering_proposals_run_customer", ["run_id", "customer_id"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("tiering_proposals", schema=None) as batch_op:
        batch_op.drop_index("ix_tiering_proposals_run_customer")

    op.drop_table("tiering_proposals")
    with op.batch_alter_table("tier_history", schema=None) as batch_op:
        batch_op.drop_index("ix_tier_history_customer_at")

    op.drop_table("tier_history")
    op.drop_table("tiering_runs")
    op.drop_table("tiering_rulesets")
