"""escalation steps: the SLA escalation ladder's proof table, warning instants on tickets,
partial indexes for the sweep

Revision ID: eb7865c82530
Revises: e7560cba427b
Create Date: 2026-11-25 21:19:20.012560
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "eb7865c82530"
down_revision = "e7560cba427b"
branch_labels = None
depends_on = None

TARGETS = ("first_response", "next_response", "resolution")
# The partial indexes' predicates, as the models write them (kefu.tickets.models): the
# sweep's WHERE clauses repeat them literally, so that both planners pick these indexes.
_OPEN = "state IN ('new', 'open', 'pending', 'on_hold') AND paused_at IS NULL"
_RUNNING = {
    "first_response": f"{_OPEN} AND first_response_at IS NULL",
    "next_response": f"{_OPEN} AND next_response_due IS NOT NULL",
    "resolution": f"{_OPEN} AND resolved_at IS NULL",
}


def _indexes() -> list[tuple[str, str, str]]:
    out = []
    for t in TARGETS:
        out.append(
            (f"ix_tickets_sla_{t}_pending", f"{t}_warn_at", f"{_RUNNING[t]} AND {t}_escalation < 2")
        )
        out.append(
            (f"ix_tickets_sla_{t}_breached", f"{t}_due", f"{_RUNNING[t]} AND {t}_escalation = 2")
        )
    return out


def upgrade() -> None:
    op.create_table(
        "escalation_steps",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=20), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=10), nullable=False),
        sa.Column("due", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sweep", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "stage IN ('warn', 'breach', 'parent')", name=op.f("ck_escalation_steps_stage")
        ),
        sa.CheckConstraint(
            "target IN ('first_response', 'next_response', 'resolution')",
            name=op.f("ck_escalation_steps_target"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_escalation_steps_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_steps")),
        sa.UniqueConstraint(
            "ticket_id",
            "target",
            "cycle",
            "stage",
            name=op.f("uq_escalation_steps_ticket_id_target_cycle_stage"),
        ),
    )
    with op.batch_alter_table("escalation_steps", schema=None) as batch_op:
        batch_op.create_index("ix_escalation_steps_sweep", ["sweep"], unique=False)

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        for t in TARGETS:
            batch_op.add_column(
                sa.Column(f"{t}_warn_at", sa.DateTime(timezone=True), nullable=True)
            )
        batch_op.add_column(
            sa.Column("next_response_cycle", sa.Integer(), server_default="0", nullable=False)
        )
        for t in TARGETS:
            batch_op.add_column(
                sa.Column(f"{t}_escalation", sa.SmallInteger(), server_default="0", nullable=False)
            )
    # Tickets opened before the ladder: no early warning, but they breach and climb.
    for t in TARGETS:
        op.execute(
            f"UPDATE tickets SET {t}_warn_at = {t}_due "
            f"WHERE {t}_warn_at IS NULL AND {t}_due IS NOT NULL"
        )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        for name, column, where in _indexes():
            batch_op.create_index(
                name,
                [column],
                unique=False,
                postgresql_where=sa.text(where),
                sqlite_where=sa.text(where),
            )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        for name, _column, _where in reversed(_indexes()):
            batch_op.drop_index(name)
        for t in reversed(TARGETS):
            batch_op.drop_column(f"{t}_escalation")
        batch_op.drop_column("next_response_cycle")
        for t in reversed(TARGETS):
            batch_op.drop_column(f"{t}_warn_at")

    with op.batch_alter_table("escalation_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_escalation_steps_sweep")

    op.drop_table("escalation_steps")
