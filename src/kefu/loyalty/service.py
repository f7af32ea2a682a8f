"""Keeping the revenue trend the churn-risk list reads. Services flush; the caller commits."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import case, delete, func, literal, select, text
from sqlalchemy.orm import Session

from kefu.clock import now
from kefu.customers.models import RevenueRecord
from kefu.loyalty.models import CustomerRevenueTrend

# A transaction-level advisory lock: two workers do not rebuild the same table at once.
LOCK_KEY = 0x6B6566750001


def trend_as_of(session: Session) -> date | None:
    return session.scalar(select(func.max(CustomerRevenueTrend.as_of)))


def refresh_revenue_trend(session: Session, as_of: date) -> int:
    """Every customer's revenue in (as_of − 12 months, as_of] and in the 12 months before,
    rebuilt in one INSERT … SELECT (the old rows go in the same transaction, so readers
    see either the old trend or the new one)."""
    pg = session.get_bind().dialect.name == "postgresql"
    if pg:
        session.execute(text("SET LOCAL work_mem = '256MB'"))
    year_ago, two_years_ago = as_of - timedelta(days=365), as_of - timedelta(days=730)
    zero = literal(Decimal(0))
    rows = (
        select(
            RevenueRecord.customer_id,
            func.sum(case((RevenueRecord.date > year_ago, RevenueRecord.amount), else_=zero)),
            func.sum(case((RevenueRecord.date <= year_ago, RevenueRecord.amount), else_=zero)),
            literal(as_of),
        )
        .where(RevenueRecord.date > two_years_ago, RevenueRecord.date <= as_of)
        .group_by(RevenueRecord.customer_id)
    )
    session.execute(delete(CustomerRevenueTrend))
    table: Any = CustomerRevenueTrend.__table__
    result = session.execute(
        table.insert().from_select(
            ["customer_id", "revenue_12m", "revenue_prior_12m", "as_of"], rows
        )
    )
    made = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if made < 0:  # the driver does not count INSERT … SELECT rows
        made = int(session.scalar(select(func.count()).select_from(CustomerRevenueTrend)) or 0)
    return made


def refresh_if_stale(session: Session) -> int | None:
    """The worker's daily rebuild (as of yesterday in China: today's revenue is not in yet);
    None when the trend is current or another worker is at it."""
    from zoneinfo import ZoneInfo

    as_of = now().astimezone(ZoneInfo("Asia/Shanghai")).date() - timedelta(days=1)
    if trend_as_of(session) == as_of:
        return None
    if session.get_bind().dialect.name == "postgresql" and not session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK_KEY}
    ):
        return None
    return refresh_revenue_trend(session, as_of)
