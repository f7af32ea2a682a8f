"""The loyalty page of a unit: retention into the chosen year per sub-unit and tier, the
repeat-contact rate, and the churn-risk list with its reasons, each customer linked to its
360 page."""

from __future__ import annotations

from datetime import UTC, date, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kefu.clock import now
from kefu.i18n import N_
from kefu.loyalty import queries
from kefu.tickets.queries import rows_by_id
from kefu.units import service as units
from kefu.units.models import Unit
from kefu.web.common import CurrentMe, Db, render
from kefu.web.satisfaction import _crumbs, _year

router = APIRouter()
RISK_SHOWN = 50
REASON_LABELS = {
    "revenue_down": N_("Revenue down"),
    "complaint": N_("Recent complaint"),
    "low_satisfaction": N_("Low satisfaction"),
    "overdue_visit": N_("Overdue return visit"),
}


@router.get("/loyalty")
def loyalty_page(request: Request, me: CurrentMe, db: Db) -> Response:
    p = request.query_params
    raw = p.get("unit_id", "")
    unit = units.get_unit(db, me.viewer, int(raw) if raw.isdigit() else me.unit_id)
    year = _year(p.get("year"), now().year)
    first = (date(year - 1, 1, 1), date(year - 1, 12, 31))
    second = (date(year, 1, 1), date(year, 12, 31))
    by_unit = queries.retention(db, unit, first, second, "unit")
    start = datetime(year, 1, 1, tzinfo=UTC)
    both = queries.repeat_contacts(db, unit, start, start.replace(year=year + 1))
    repeats = both["unit"]
    risks, at_risk = queries.churn_risk(db, unit, now(), RISK_SHOWN)
    ctx = {
        "unit": unit,
        "year": year,
        "years": list(range(now().year, now().year - 4, -1)),
        "crumbs": _crumbs(db, me, unit),
        "retention": by_unit,
        "retention_total": queries.total_rate(by_unit),
        "by_tier": queries.retention(db, unit, first, second, "tier"),
        "repeats": repeats,
        "repeats_total": queries.total_rate(repeats),
        "repeats_by_tier": both["tier"],
        "unit_names": rows_by_id(db, Unit, {r.key for r in by_unit} | {r.key for r in repeats}),
        "risks": risks,
        "at_risk": at_risk,
        "risk_units": rows_by_id(db, Unit, {r.owning_unit_id for r in risks}),
        "REASON_LABELS": REASON_LABELS,
    }
    return render(request, "loyalty/report.html", ctx)
