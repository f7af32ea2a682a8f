"""Reports: satisfaction (index, CSAT, NPS, gap per dimension) for a unit's subtree."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from kefu.api.v1.deps import CurrentViewer, Db
from kefu.clock import now
from kefu.loyalty import queries as loyalty_queries
from kefu.surveys import queries
from kefu.units import service as units

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get(
    "/satisfaction",
    summary="Satisfaction of a unit's subtree over a period, grouped (ratio of sums)",
)
def satisfaction(
    viewer: CurrentViewer,
    db: Db,
    unit_id: Annotated[int, Query(description="The unit whose subtree is reported.")],
    start: Annotated[date, Query(description="First day (its month counts whole).")],
    end: Annotated[date, Query(description="Last day.")],
    by: Annotated[
        Literal["unit", "month", "tier", "service_level", "category", "agent", "customer"],
        Query(),
    ] = "unit",
    monthly: Annotated[bool, Query(description="Also split each group by month.")] = False,
) -> dict[str, Any]:
    unit = units.get_unit(db, viewer, unit_id)
    if by == "agent":
        rows = queries.by_agent(db, viewer, unit, start, end)
    elif by == "customer":
        rows = queries.by_customer(db, viewer, unit, start, end)
    else:
        rows = queries.report(db, unit, start, end, by, month=monthly)
    return {
        "unit_id": unit.id,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "by": by,
        "total": queries.total(db, unit, start, end).as_dict(),
        "items": [r.as_dict() for r in rows],
    }


@router.get(
    "/loyalty",
    summary="Retention (customers with revenue in both years ÷ in the first) per sub-unit and "
    "tier, and the repeat-contact rate, of a unit's subtree",
)
def loyalty(
    viewer: CurrentViewer,
    db: Db,
    unit_id: Annotated[int, Query(description="The unit whose subtree is reported.")],
    year: Annotated[int, Query(ge=2000, le=2100, description="Retained into this year.")],
) -> dict[str, Any]:
    unit = units.get_unit(db, viewer, unit_id)
    first = (date(year - 1, 1, 1), date(year - 1, 12, 31))
    second = (date(year, 1, 1), date(year, 12, 31))
    by_unit = loyalty_queries.retention(db, unit, first, second, "unit")
    start = datetime(year, 1, 1, tzinfo=UTC)
    repeats = loyalty_queries.repeat_contacts(db, unit, start, start.replace(year=year + 1))
    return {
        "unit_id": unit.id,
        "year": year,
        "retention": {
            "total": loyalty_queries.total_rate(by_unit).as_dict(),
            "by_unit": [r.as_dict() for r in by_unit],
            "by_tier": [
                r.as_dict() for r in loyalty_queries.retention(db, unit, first, second, "tier")
            ],
        },
        "repeat_contacts": {
            "total": loyalty_queries.total_rate(repeats["unit"]).as_dict(),
            "by_unit": [r.as_dict() for r in repeats["unit"]],
            "by_tier": [r.as_dict() for r in repeats["tier"]],
        },
    }


@router.get(
    "/churn-risk",
    summary="Active customers of a unit's subtree at risk of leaving, with the reasons",
)
def churn_risk(
    viewer: CurrentViewer,
    db: Db,
    unit_id: Annotated[int, Query(description="The unit whose subtree is reported.")],
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    unit = units.get_unit(db, viewer, unit_id)
    rows, total = loyalty_queries.churn_risk(db, unit, now(), limit)
    return {"unit_id": unit.id, "total": total, "items": [r.as_dict() for r in rows]}
