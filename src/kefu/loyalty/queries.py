"""Loyalty reports of a unit's subtree, set-based:

- retention: customers with revenue in both periods ÷ customers with revenue in the first,
  per sub-unit and per tier;
- repeat-contact rate: resolutions followed within N days by a reopening of the ticket or a
  new ticket of the same customer and category, ÷ resolutions;
- the churn-risk list: active customers with at least one reason — revenue down ≥ X %
  (last 12 months against the 12 before), a recent complaint, a low satisfaction index
  over the last year, an overdue return visit — most reasons first.

Grouping by sub-unit folds per-unit rows in Python (a subtree has at most thousands of
units), so each report is one grouped statement whatever the depth of the tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from kefu.complaints.models import Complaint
from kefu.config import get_settings
from kefu.customers.models import Customer, RevenueRecord
from kefu.loyalty.models import CustomerRevenueTrend
from kefu.surveys.models import SurveyAnswer
from kefu.tickets.models import Ticket, TicketEvent
from kefu.units.models import Unit
from kefu.visits.models import ReturnVisit


def _subtree(unit: Unit) -> Any:
    return select(Unit.id).where(Unit.path.like(unit.path + "%"))


def child_keys(session: Session, unit: Unit) -> dict[int, int]:
    """Every unit of the subtree → the unit itself or the child whose subtree holds it."""
    depth = unit.path.count("/") - 1  # '/1/12/' → 2 ids; a child's id is the next one
    out: dict[int, int] = {}
    for uid, path in session.execute(
        select(Unit.id, Unit.path).where(Unit.path.like(unit.path + "%"))
    ):
        ids = path.strip("/").split("/")
        out[uid] = int(ids[depth]) if len(ids) > depth else unit.id
    return out


@dataclass
class Rate:
    key: Any
    base: int = 0
    hits: int = 0

    @property
    def rate(self) -> float | None:
        return round(self.hits * 100.0 / self.base, 1) if self.base else None

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "base": self.base, "hits": self.hits, "rate": self.rate}


def retention(
    session: Session, unit: Unit, first: tuple[date, date], second: tuple[date, date], by: str
) -> list[Rate]:
    """by 'unit' (sub-units) or 'tier'."""

    def having_revenue(period: tuple[date, date]) -> Any:
        return (
            select(RevenueRecord.customer_id)
            .where(RevenueRecord.date >= period[0], RevenueRecord.date <= period[1])
            .group_by(RevenueRecord.customer_id)
            .subquery()
        )

    a, b = having_revenue(first), having_revenue(second)
    key: Any = Customer.owning_unit_id if by == "unit" else func.coalesce(Customer.tier, "")
    rows = session.execute(
        select(key, func.count(), func.count(b.c.customer_id))
        .select_from(Customer)
        .join(a, a.c.customer_id == Customer.id)
        .outerjoin(b, b.c.customer_id == Customer.id)
        .where(Customer.owning_unit_id.in_(_subtree(unit)))
        .group_by(key)
    ).all()
    groups: dict[Any, Rate] = {}
    fold = child_keys(session, unit) if by == "unit" else None
    for k, base, kept in rows:
        g = fold.get(int(k), unit.id) if fold is not None else k
        rate = groups.setdefault(g, Rate(g))
        rate.base += int(base)
        rate.hits += int(kept)
    return sorted(groups.values(), key=lambda r: str(r.key))


def total_rate(rows: list[Rate]) -> Rate:
    return Rate("total", sum(r.base for r in rows), sum(r.hits for r in rows))


def repeat_contacts(
    session: Session, unit: Unit, start: datetime, end: datetime
) -> dict[str, list[Rate]]:
    """Resolutions in [start, end) and how many came back within N days, per sub-unit
    ("unit") and per tier of the customer ("tier"), from one pass over the resolutions."""
    days = timedelta(days=get_settings().repeat_contact_days)
    resolved = TicketEvent.data["to"].as_string() == "resolved"
    rows = session.execute(
        select(
            TicketEvent.ticket_id,
            TicketEvent.at,
            Ticket.customer_id,
            Ticket.category_code,
            Ticket.owning_unit_id,
            func.coalesce(Customer.tier, ""),
        )
        .join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .join(Customer, Customer.id == Ticket.customer_id)
        .where(
            TicketEvent.kind == "state",
            resolved,
            TicketEvent.at >= start,
            TicketEvent.at < end,
            Ticket.owning_unit_id.in_(_subtree(unit)),
        )
    ).all()
    if not rows:
        return {"unit": [], "tier": []}
    ticket_ids = {r[0] for r in rows}
    reopened: dict[int, list[datetime]] = {}
    for tid, at in session.execute(
        select(TicketEvent.ticket_id, TicketEvent.at).where(
            TicketEvent.kind == "state",
            TicketEvent.data["frm"].as_string() == "resolved",
            TicketEvent.data["to"].as_string() == "open",
            TicketEvent.ticket_id.in_(ticket_ids),
        )
    ):
        reopened.setdefault(tid, []).append(at)
    customers = {r[2] for r in rows}
    later: dict[tuple[int, str], list[tuple[datetime, int]]] = {}
    for cid, cat, created, tid in session.execute(
        select(Ticket.customer_id, Ticket.category_code, Ticket.created_at, Ticket.id).where(
            Ticket.customer_id.in_(customers),
            Ticket.created_at >= start,
            Ticket.created_at < end + days,
        )
    ):
        later.setdefault((cid, cat), []).append((created, tid))
    fold = child_keys(session, unit)
    groups: dict[str, dict[Any, Rate]] = {"unit": {}, "tier": {}}
    for tid, at, cid, cat, uid, tier in rows:
        back = any(at < r <= at + days for r in reopened.get(tid, ())) or any(
            at < c <= at + days and other != tid for c, other in later.get((cid, cat), ())
        )
        for by, key in (("unit", fold.get(uid, unit.id)), ("tier", tier)):
            g = groups[by].setdefault(key, Rate(key))
            g.base += 1
            g.hits += int(back)
    return {by: sorted(g.values(), key=lambda r: str(r.key)) for by, g in groups.items()}


REASONS = ("revenue_down", "complaint", "low_satisfaction", "overdue_visit")


@dataclass
class AtRisk:
    customer_id: int
    name: str
    tier: str | None
    owning_unit_id: int
    revenue_now: Decimal
    revenue_before: Decimal
    reasons: list[str] = field(default_factory=list)
    index: float | None = None

    @property
    def change(self) -> float | None:
        if not self.revenue_before:
            return None
        return round(float((self.revenue_now - self.revenue_before) * 100 / self.revenue_before), 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "name": self.name,
            "tier": self.tier,
            "owning_unit_id": self.owning_unit_id,
            "revenue_12m": str(self.revenue_now),
            "revenue_prior_12m": str(self.revenue_before),
            "revenue_change_percent": self.change,
            "satisfaction_index": self.index,
            "reasons": self.reasons,
        }


def churn_risk(
    session: Session, unit: Unit, at: datetime, limit: int = 200
) -> tuple[list[AtRisk], int]:
    """The customers of the subtree at risk, most reasons (then most revenue lost) first,
    and how many there are in all. One statement. Revenue comes from the daily revenue trend
    (`loyalty.service.refresh_revenue_trend`, kept by the worker), not from the records."""
    s = get_settings()
    subtree = _subtree(unit)
    trend = CustomerRevenueTrend
    rev = select(
        trend.customer_id.label("cid"),
        trend.revenue_12m.label("now"),
        trend.revenue_prior_12m.label("before"),
    ).subquery()
    comp = (
        select(Complaint.customer_id.label("cid"), func.count().label("n"))
        .where(
            Complaint.created_at >= at - timedelta(days=s.churn_complaint_days),
            Complaint.owning_unit_id.in_(subtree),
        )
        .group_by(Complaint.customer_id)
        .subquery()
    )
    sat = (
        select(
            SurveyAnswer.customer_id.label("cid"),
            func.sum(SurveyAnswer.perceived_total).label("p"),
            func.sum(SurveyAnswer.expected_total).label("e"),
        )
        .where(
            SurveyAnswer.answered_at >= at - timedelta(days=365),
            SurveyAnswer.owning_unit_id.in_(subtree),
        )
        .group_by(SurveyAnswer.customer_id)
        .subquery()
    )
    vis = (
        select(ReturnVisit.customer_id.label("cid"), func.count().label("n"))
        .where(
            ReturnVisit.state == "scheduled",
            ReturnVisit.due_at < at,
            ReturnVisit.owning_unit_id.in_(subtree),
        )
        .group_by(ReturnVisit.customer_id)
        .subquery()
    )
    drop = Decimal(str(1 - s.churn_revenue_drop_percent / 100))
    flags = {
        "revenue_down": and_(rev.c.before > 0, rev.c.now <= rev.c.before * drop),
        "complaint": comp.c.n > 0,
        "low_satisfaction": and_(sat.c.e > 0, sat.c.p * 100 < sat.c.e * s.recovery_index_below),
        "overdue_visit": vis.c.n > 0,
    }
    one = literal(1)
    score = sum((case((f, one), else_=0) for f in flags.values()), literal(0))
    lost = func.coalesce(rev.c.before, 0) - func.coalesce(rev.c.now, 0)
    stmt = (
        select(
            Customer.id,
            Customer.name,
            Customer.tier,
            Customer.owning_unit_id,
            func.coalesce(rev.c.now, 0),
            func.coalesce(rev.c.before, 0),
            sat.c.p,
            sat.c.e,
            *(case((f, one), else_=0) for f in flags.values()),
            func.count().over().label("total"),
        )
        .select_from(Customer)
        .outerjoin(rev, rev.c.cid == Customer.id)
        .outerjoin(comp, comp.c.cid == Customer.id)
        .outerjoin(sat, sat.c.cid == Customer.id)
        .outerjoin(vis, vis.c.cid == Customer.id)
        .where(
            Customer.owning_unit_id.in_(subtree),
            Customer.status == "active",
            or_(*flags.values()),
        )
        .order_by(score.desc(), lost.desc(), Customer.id)
        .limit(limit)
    )
    out, total = [], 0
    for row in session.execute(stmt):
        cid, name, tier, uid, now, before, p, e, *bits, total = row
        out.append(
            AtRisk(
                cid,
                name,
                tier,
                uid,
                Decimal(now),
                Decimal(before),
                [r for r, bit in zip(REASONS, bits, strict=True) if bit],
                round(p * 100.0 / e, 1) if e else None,
            )
        )
    return out, int(total)
