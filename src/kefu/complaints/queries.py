"""Read side of complaints: lists, and the complaint register — counts per 100 customers
by sub-unit, root cause and month."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, func, literal, select, union_all
from sqlalchemy.orm import Session, aliased

from kefu.complaints.models import Complaint
from kefu.customers.models import Customer
from kefu.scope import Viewer, visible
from kefu.units.models import Unit


def complaints(
    session: Session,
    viewer: Viewer,
    *,
    open_only: bool = False,
    severity: int | None = None,
    cause_code: str | None = None,
    customer_id: int | None = None,
    pending_compensation: bool = False,
) -> Select[Any]:
    stmt = visible(select(Complaint), Complaint, viewer)
    if open_only:
        stmt = stmt.where(Complaint.verified_at.is_(None))
    if severity is not None:
        stmt = stmt.where(Complaint.severity == severity)
    if cause_code:
        stmt = stmt.where(Complaint.cause_code == cause_code)
    if customer_id is not None:
        stmt = stmt.where(Complaint.customer_id == customer_id)
    if pending_compensation:
        stmt = stmt.where(Complaint.compensation_state == "pending")
    return stmt


@dataclass
class RegisterRow:
    key: Any
    complaints: int
    customers: int

    @property
    def per_100(self) -> float | None:
        return round(self.complaints * 100.0 / self.customers, 2) if self.customers else None

    def as_dict(self) -> dict[str, Any]:
        key = self.key.isoformat() if isinstance(self.key, date) else self.key
        return {
            "key": key,
            "complaints": self.complaints,
            "customers": self.customers,
            "per_100_customers": self.per_100,
        }


def _bounds(unit: Unit, start: date, end: date) -> tuple[datetime, datetime]:
    tz = ZoneInfo(unit.timezone or "Asia/Shanghai")
    return datetime.combine(start, time.min, tz), datetime.combine(end, time.max, tz)


def _in_subtree(col: Any, unit: Unit) -> Any:
    leaf = aliased(Unit)
    return col.in_(select(leaf.id).where(leaf.path.like(unit.path + "%")))


def register(session: Session, unit: Unit, start: date, end: date, by: str) -> list[RegisterRow]:
    """Complaints opened in [start, end] in the unit's subtree, per group, with the active
    customers of the same scope as the denominator. The caller checked the viewer sees
    `unit`. by: unit (the unit itself and each child subtree), cause, month."""
    lo, hi = _bounds(unit, start, end)
    period = and_(Complaint.created_at >= lo, Complaint.created_at <= hi)
    active = Customer.status == "active"
    if by == "unit":
        child, leaf = aliased(Unit), aliased(Unit)
        below = and_(child.parent_id == unit.id, leaf.path.like(child.path + "%"))
        counts = dict(
            session.execute(
                union_all(
                    select(literal(unit.id), func.count())
                    .select_from(Complaint)
                    .where(Complaint.owning_unit_id == unit.id, period),
                    select(child.id, func.count())
                    .select_from(Complaint)
                    .join(leaf, leaf.id == Complaint.owning_unit_id)
                    .join(child, below)
                    .where(period)
                    .group_by(child.id),
                )
            ).all()
        )
        base = dict(
            session.execute(
                union_all(
                    select(literal(unit.id), func.count())
                    .select_from(Customer)
                    .where(Customer.owning_unit_id == unit.id, active),
                    select(child.id, func.count())
                    .select_from(Customer)
                    .join(leaf, leaf.id == Customer.owning_unit_id)
                    .join(child, below)
                    .where(active)
                    .group_by(child.id),
                )
            ).all()
        )
        keys = sorted(set(counts) | {k for k, v in base.items() if v})
        return [RegisterRow(k, int(counts.get(k, 0)), int(base.get(k, 0))) for k in keys]
    customers = int(
        session.scalar(
            select(func.count())
            .select_from(Customer)
            .where(_in_subtree(Customer.owning_unit_id, unit), active)
        )
        or 0
    )
    scope = and_(_in_subtree(Complaint.owning_unit_id, unit), period)
    if by == "cause":
        rows = session.execute(
            select(Complaint.cause_code, func.count()).where(scope).group_by(Complaint.cause_code)
        ).all()
        return [
            RegisterRow(code or "", int(n), customers)
            for code, n in sorted(rows, key=lambda r: -r[1])
        ]
    tz = ZoneInfo(unit.timezone or "Asia/Shanghai")
    months = Counter(
        at.astimezone(tz).date().replace(day=1)
        for at in session.scalars(select(Complaint.created_at).where(scope))
    )
    return [RegisterRow(m, n, customers) for m, n in sorted(months.items())]
