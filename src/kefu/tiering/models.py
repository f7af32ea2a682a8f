from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from kefu.clock import now
from kefu.db import Base, UTCDateTime

BigId = BigInteger().with_variant(Integer, "sqlite")
Money = Numeric(18, 2)


class TieringRuleset(Base):
    """One saved version of the rules; the newest is the one runs use."""

    __tablename__ = "tiering_rulesets"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    created_by: Mapped[str] = mapped_column(String(100))


class TieringRun(Base):
    """A computation over every customer: a dry run until applied."""

    __tablename__ = "tiering_runs"
    __table_args__ = (
        CheckConstraint("status IN ('dry_run', 'applied', 'discarded')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ruleset_id: Mapped[int | None] = mapped_column(ForeignKey("tiering_rulesets.id"))
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)  # the rules as used (previews too)
    is_preview: Mapped[bool] = mapped_column(default=False)  # unsaved rules: never applied
    run_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="dry_run")
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    created_by: Mapped[str] = mapped_column(String(100))
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    applied_by: Mapped[str | None] = mapped_column(String(100))


class TieringProposal(Base):
    """What a run proposes for one customer (written set-based by INSERT … SELECT).

    Scratch data of one run, written a million rows at a time by one statement that reads
    both ids from the tables they name: no foreign keys, whose per-row checks cost more
    than the insert itself (runs and customers are never deleted; applying joins them)."""

    __tablename__ = "tiering_proposals"
    __table_args__ = (
        Index("ix_tiering_proposals_run_customer", "run_id", "customer_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[int] = mapped_column(Integer)
    old_tier: Mapped[str | None] = mapped_column(String(1))
    new_tier: Mapped[str] = mapped_column(String(1))
    old_level: Mapped[str | None] = mapped_column(String(4))
    new_level: Mapped[str | None] = mapped_column(String(4))
    old_unit_id: Mapped[int] = mapped_column(Integer)
    new_unit_id: Mapped[int] = mapped_column(Integer)
    rule: Mapped[str] = mapped_column(String(40))
    revenue_12m: Mapped[Decimal] = mapped_column(Money)
    is_important: Mapped[bool] = mapped_column(default=False)


class TierHistory(Base):
    """A change of tier, service level or owning unit: from, to, why, run, who, when.

    Applying a run writes up to a row per customer in one INSERT … SELECT that joins the
    customers and the run it names, so the ids hold by construction; foreign keys would add
    two per-row checks that cost more than the insert (30 s of 50 s for a million rows,
    measured). Customers and runs are never deleted (a customer is marked lost)."""

    __tablename__ = "tier_history"
    __table_args__ = (Index("ix_tier_history_customer_at", "customer_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[int | None] = mapped_column(Integer)
    from_tier: Mapped[str | None] = mapped_column(String(1))
    to_tier: Mapped[str | None] = mapped_column(String(1))
    from_level: Mapped[str | None] = mapped_column(String(4))
    to_level: Mapped[str | None] = mapped_column(String(4))
    from_unit_id: Mapped[int | None] = mapped_column(Integer)
    to_unit_id: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(600))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
