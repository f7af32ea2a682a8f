"""Satisfaction reports: index, CSAT, NPS and the gap per dimension, read from the monthly
sums (so a year over millions of answers costs a few thousand rows), grouped by sub-unit,
month, tier, service level or category; per agent and the drill-down read the answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Select, and_, func, literal, select, union_all
from sqlalchemy.orm import Session, aliased

from kefu.config import get_settings
from kefu.scope import Viewer, visible
from kefu.surveys import policy
from kefu.surveys.models import DIMENSIONS, RecoveryTask, SatisfactionMonth, SurveyAnswer
from kefu.units.models import Unit

GROUPS = ("unit", "month", "tier", "service_level", "category")
_SUMS = (
    "answers",
    "expected",
    "perceived",
    *(f"{p}_{d}" for d in DIMENSIONS for p in ("e", "p")),
    "csat_answers",
    "csat_satisfied",
    "nps_answers",
    "promoters",
    "detractors",
)


@dataclass
class Figures:
    """One row of a report: the sums and what they mean."""

    key: Any
    sums: dict[str, int] = field(default_factory=dict)

    @property
    def answers(self) -> int:
        return self.sums.get("answers", 0)

    @property
    def index(self) -> float | None:
        return policy.index(self.sums.get("perceived", 0), self.sums.get("expected", 0))

    @property
    def csat(self) -> float | None:
        return policy.csat_share(
            self.sums.get("csat_satisfied", 0), self.sums.get("csat_answers", 0)
        )

    @property
    def nps(self) -> float | None:
        return policy.nps(
            self.sums.get("promoters", 0),
            self.sums.get("detractors", 0),
            self.sums.get("nps_answers", 0),
        )

    def dimensions(self) -> list[dict[str, Any]]:
        """Per SERVQUAL dimension: index and the mean gap (perceived − expected), worst first."""
        n = self.answers
        out = []
        for d in DIMENSIONS:
            e, p = self.sums.get(f"e_{d}", 0), self.sums.get(f"p_{d}", 0)
            out.append(
                {
                    "dimension": d,
                    "index": policy.index(p, e),
                    "gap": round((p - e) / n, 2) if n else None,
                }
            )
        return sorted(out, key=lambda r: (r["gap"] is None, r["gap"] or 0))

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key.isoformat() if isinstance(self.key, date) else self.key,
            "answers": self.answers,
            "index": self.index,
            "csat": self.csat,
            "nps": self.nps,
            "dimensions": self.dimensions(),
        }


def _sums() -> list[Any]:
    return [func.coalesce(func.sum(getattr(SatisfactionMonth, c)), 0).label(c) for c in _SUMS]


def _figures(rows: Any, width: int) -> list[Figures]:
    out = []
    for row in rows:
        key = row[0] if width == 1 else tuple(row[:width])
        out.append(Figures(key, {c: int(row[width + i]) for i, c in enumerate(_SUMS)}))
    return out


def _period(start: date, end: date) -> Any:
    return and_(SatisfactionMonth.month >= start.replace(day=1), SatisfactionMonth.month <= end)


def _subtree_rows(unit: Unit) -> Any:
    leaf = aliased(Unit)
    return SatisfactionMonth.unit_id.in_(select(leaf.id).where(leaf.path.like(unit.path + "%")))


def report(
    session: Session, unit: Unit, start: date, end: date, by: str, month: bool = False
) -> list[Figures]:
    """The unit's subtree over [start, end], one row per group (`by`), optionally per
    group and month. `by="unit"`: the unit's own answers and one row per child subtree.
    The caller checked that the viewer sees `unit` (its subtree is then theirs)."""
    period = _period(start, end)
    extra = [SatisfactionMonth.month] if month else []
    if by == "unit":
        child, leaf = aliased(Unit), aliased(Unit)
        own = (
            select(literal(unit.id).label("key"), *extra, *_sums())
            .where(SatisfactionMonth.unit_id == unit.id, period)
            .group_by(*extra)
        )
        below = (
            select(child.id.label("key"), *extra, *_sums())
            .select_from(SatisfactionMonth)
            .join(leaf, leaf.id == SatisfactionMonth.unit_id)
            .join(child, and_(child.parent_id == unit.id, leaf.path.like(child.path + "%")))
            .where(period)
            .group_by(child.id, *extra)
        )
        rows = session.execute(union_all(own, below)).all()
        figures = [f for f in _figures(rows, 1 + len(extra)) if f.answers]
        return sorted(figures, key=lambda f: str(f.key))
    column = {
        "month": SatisfactionMonth.month,
        "tier": SatisfactionMonth.tier,
        "service_level": SatisfactionMonth.service_level,
        "category": SatisfactionMonth.category_code,
    }[by]
    keys = [column] + ([SatisfactionMonth.month] if month and by != "month" else [])
    stmt = (
        select(*keys, *_sums()).where(_subtree_rows(unit), period).group_by(*keys).order_by(*keys)
    )
    return _figures(session.execute(stmt).all(), len(keys))


def total(session: Session, unit: Unit, start: date, end: date) -> Figures:
    row = session.execute(select(*_sums()).where(_subtree_rows(unit), _period(start, end))).one()
    return Figures(unit.id, {c: int(row[i]) for i, c in enumerate(_SUMS)})


def by_agent(session: Session, viewer: Viewer, unit: Unit, start: date, end: date) -> list[Figures]:
    """Per agent, from the answers (the monthly sums do not keep agents)."""
    return by_answers(session, viewer, unit, start, end, SurveyAnswer.agent_id)


def by_customer(
    session: Session, viewer: Viewer, unit: Unit, start: date, end: date
) -> list[Figures]:
    """Per customer, from the answers."""
    return by_answers(session, viewer, unit, start, end, SurveyAnswer.customer_id)


def by_answers(
    session: Session, viewer: Viewer, unit: Unit, start: date, end: date, column: Any
) -> list[Figures]:
    """Figures grouped by a column of the answers the viewer sees (agent, customer)."""
    a = SurveyAnswer
    one = literal(1)
    from sqlalchemy import case

    cols = [
        func.count().label("answers"),
        func.sum(a.expected_total),
        func.sum(a.perceived_total),
        *(func.sum(getattr(a, f"{p}_{d}")) for d in DIMENSIONS for p in ("e", "p")),
        func.count(a.csat),
        func.sum(case((a.csat >= 4, one), else_=0)),
        func.count(a.nps),
        func.sum(case((a.nps >= 9, one), else_=0)),
        func.sum(case((a.nps <= 6, one), else_=0)),
    ]
    leaf = aliased(Unit)
    stmt = visible(select(column, *cols), SurveyAnswer, viewer).where(
        a.owning_unit_id.in_(select(leaf.id).where(leaf.path.like(unit.path + "%"))),
        a.month >= start.replace(day=1),
        a.month <= end,
        column.is_not(None),
    )
    rows = session.execute(stmt.group_by(column)).all()
    return [Figures(r[0], {c: int(r[1 + i] or 0) for i, c in enumerate(_SUMS)}) for r in rows]


def answers(
    session: Session,
    viewer: Viewer,
    *,
    unit: Unit | None = None,
    customer_id: int | None = None,
    ticket_id: int | None = None,
    agent_id: int | None = None,
    month: date | None = None,
    low_only: bool = False,
) -> Select[Any]:
    """The answers behind a figure (drill-down), newest first by id."""
    a = SurveyAnswer
    stmt = visible(select(a), SurveyAnswer, viewer)
    if unit is not None:
        leaf = aliased(Unit)
        stmt = stmt.where(
            a.owning_unit_id.in_(select(leaf.id).where(leaf.path.like(unit.path + "%")))
        )
    if customer_id is not None:
        stmt = stmt.where(a.customer_id == customer_id)
    if ticket_id is not None:
        stmt = stmt.where(a.ticket_id == ticket_id)
    if agent_id is not None:
        stmt = stmt.where(a.agent_id == agent_id)
    if month is not None:
        stmt = stmt.where(a.month == month.replace(day=1))
    if low_only:
        below = get_settings().recovery_index_below
        stmt = stmt.where(a.perceived_total * 100 < a.expected_total * below)
    return stmt


def last_for_customer(session: Session, customer_id: int) -> SurveyAnswer | None:
    """The customer's latest answer (the ticket page's context panel shows it)."""
    return session.scalars(
        select(SurveyAnswer)
        .where(SurveyAnswer.customer_id == customer_id)
        .order_by(SurveyAnswer.answered_at.desc(), SurveyAnswer.id.desc())
        .limit(1)
    ).first()


def recovery_tasks(session: Session, viewer: Viewer, *, state: str | None = "open") -> Select[Any]:
    stmt = visible(select(RecoveryTask), RecoveryTask, viewer)
    if state:
        stmt = stmt.where(RecoveryTask.state == state)
    return stmt
