"""tiering proposals and history without foreign keys; list index ends with id; no region index

Revision ID: 5f3a9c1d7e42
Revises: aa764c3a6eee
Create Date: 2026-11-26 00:20:00

- tiering_proposals (per-run scratch data) and tier_history: written a million rows at a
  time by one INSERT … SELECT that reads both ids from the tables they name; the per-row
  foreign-key checks cost more than the insert (18 s per million rows for the proposals,
  30 s of the history's 50 s, measured).
- ix_customers_unit_tier_revenue gains `id`, the keyset's tie-break, so a page of a unit's
  customers of one tier by revenue is read straight off the index.
- ix_customers_region_code has no reader; every rewritten customer paid a write into it.
"""

from __future__ import annotations

from alembic import op

revision = "5f3a9c1d7e42"
down_revision = "aa764c3a6eee"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tiering_proposals", schema=None) as batch_op:
        batch_op.drop_constraint("fk_tiering_proposals_customer_id_customers", type_="foreignkey")
        batch_op.drop_constraint("fk_tiering_proposals_run_id_tiering_runs", type_="foreignkey")
    with op.batch_alter_table("tier_history", schema=None) as batch_op:
        batch_op.drop_constraint("fk_tier_history_customer_id_customers", type_="foreignkey")
        batch_op.drop_constraint("fk_tier_history_run_id_tiering_runs", type_="foreignkey")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_region_code")
        batch_op.drop_index("ix_customers_unit_tier_revenue")
        batch_op.create_index(
            "ix_customers_unit_tier_revenue",
            ["owning_unit_id", "tier", "revenue_12m", "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_unit_tier_revenue")
        batch_op.create_index(
            "ix_customers_unit_tier_revenue",
            ["owning_unit_id", "tier", "revenue_12m"],
            unique=False,
        )
        batch_op.create_index("ix_customers_region_code", ["region_code"], unique=False)
    with op.batch_alter_table("tier_history", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_tier_history_run_id_tiering_runs",
            "tiering_runs",
            ["run_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            "fk_tier_history_customer_id_customers",
            "customers",
            ["customer_id"],
            ["id"],
            ondelete="CASCADE",
        )
    with op.batch_alter_table("tiering_proposals", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_tiering_proposals_run_id_tiering_runs",
            "tiering_runs",
            ["run_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            "fk_tiering_proposals_customer_id_customers",
            "customers",
            ["customer_id"],
            ["id"],
            ondelete="CASCADE",
        )
