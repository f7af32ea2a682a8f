"""Reports: satisfaction (index, CSAT, NPS, gap per dimension) for a unit's subtree."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from kefu.api.v1.deps import CurrentViewer, Db
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
        Literal["unit", "month", "tier", "service_level", "category", "agent"], Query()
    ] = "unit",
    monthly: Annotated[bool, Query(description="Also split each group by month.")] = False,
) -> dict[str, Any]:
    unit = units.get_unit(db, viewer, unit_id)
    if by == "agent":
        rows = queries.by_agent(db, viewer, unit, start, end)
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
