"""The satisfaction page of a unit: index, CSAT and NPS over a year with the monthly trend,
its sub-units (drill down), the gap per SERVQUAL dimension (which hurts most), by tier,
service level, category and agent, and the answers behind each figure."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kefu.clock import now
from kefu.customers.models import Customer
from kefu.i18n import N_, get_locale
from kefu.pagination import paginate
from kefu.staff.models import Staff
from kefu.surveys import queries
from kefu.surveys.models import SurveyAnswer
from kefu.tickets.queries import categories as category_rows
from kefu.tickets.queries import rows_by_id
from kefu.units import service as units
from kefu.units.models import Unit
from kefu.web import charts
from kefu.web.common import CurrentMe, Db, Me, env, render, tr, url_with
from kefu.web.visits import LABELS

router = APIRouter()
env.globals.update(charts.TEMPLATE_HELPERS)
PAGE_SIZE = 25


def _year(raw: str | None, default: int) -> int:
    return int(raw) if raw and raw.isdigit() and 2000 <= int(raw) <= 2100 else default


def _crumbs(db: Any, me: Me, unit: Unit) -> list[Unit]:
    """The units above `unit` that the viewer sees, top first (for going back up)."""
    ids = [int(x) for x in unit.path.strip("/").split("/")][:-1]
    if not me.viewer.is_admin:
        ids = ids[ids.index(me.unit_id) :] if me.unit_id in ids else []
    found = rows_by_id(db, Unit, ids)
    return [found[i] for i in ids if i in found]


def _index_chart(rows: list[queries.Figures], year: int, unit: Unit) -> Any:
    by_month = {f.key: f for f in rows}
    today = now().date()
    bars = []
    for m in range(1, 13):
        month = date(year, m, 1)
        f = by_month.get(month)
        value = Decimal(str(f.index)) if f and f.index is not None else Decimal(0)
        bars.append(
            charts.Bar(
                label=charts.month_label(month),
                value=value,
                text=(
                    f"{f.index:.1f} ({tr(N_('{n} answers'), n=f.answers)})"
                    if f and f.answers
                    else "—"
                ),
                tick=charts.month_tick(month),
                partial=month.year == today.year and month.month == today.month,
            )
        )
    title = tr(N_("Satisfaction index by month, {year}"), year=year)
    desc = tr(
        N_("Σ perceived ÷ Σ expected × 100 of {unit} and the units below it."), unit=unit.name
    )
    return charts.bar_chart(bars, chart_id=f"sat-{unit.id}-{year}", title=title, desc=desc)


@router.get("/satisfaction")
def report_page(request: Request, me: CurrentMe, db: Db) -> Response:
    p = request.query_params
    raw = p.get("unit_id", "")
    unit = units.get_unit(db, me.viewer, int(raw) if raw.isdigit() else me.unit_id)
    year = _year(p.get("year"), now().year)
    start, end = date(year, 1, 1), date(year, 12, 31)
    total = queries.total(db, unit, start, end)
    children = queries.report(db, unit, start, end, "unit")
    agents = queries.by_agent(db, me.viewer, unit, start, end)
    english = get_locale() == "en"
    cats = {c.code: (c.name_en if english else c.name_zh) for c in category_rows(db)}
    ctx = {
        "unit": unit,
        "year": year,
        "years": list(range(now().year, now().year - 4, -1)),
        "crumbs": _crumbs(db, me, unit),
        "total": total,
        "chart": _index_chart(queries.report(db, unit, start, end, "month"), year, unit),
        "children": children,
        "unit_names": rows_by_id(db, Unit, {f.key for f in children}),
        "tiers": queries.report(db, unit, start, end, "tier"),
        "levels": queries.report(db, unit, start, end, "service_level"),
        "categories": queries.report(db, unit, start, end, "category"),
        "category_names": cats,
        "agents": sorted(agents, key=lambda f: (f.index is None, f.index or 0)),
        "agent_names": rows_by_id(db, Staff, {f.key for f in agents}),
        **LABELS,
    }
    return render(request, "satisfaction/report.html", ctx)


@router.get("/satisfaction/answers")
def answers_page(request: Request, me: CurrentMe, db: Db) -> Response:
    p = request.query_params
    raw = p.get("unit_id", "")
    unit = units.get_unit(db, me.viewer, int(raw) if raw.isdigit() else me.unit_id)
    agent = p.get("agent_id", "")
    customer = p.get("customer_id", "")
    month = None
    try:
        month = date.fromisoformat(p.get("month", "")) if p.get("month") else None
    except ValueError:
        month = None
    low = p.get("low") == "1"
    stmt = queries.answers(
        db,
        me.viewer,
        unit=unit,
        agent_id=int(agent) if agent.isdigit() else None,
        customer_id=int(customer) if customer.isdigit() else None,
        month=month,
        low_only=low,
    )
    cursor = p.get("cursor") or None
    page = paginate(db, stmt, key=SurveyAnswer.id, limit=PAGE_SIZE, cursor=cursor, descending=True)
    rows = page.items
    ctx = {
        "unit": unit,
        "month": month,
        "low": low,
        "answers": rows,
        "customers": rows_by_id(db, Customer, {a.customer_id for a in rows}),
        "people": rows_by_id(db, Staff, {a.agent_id for a in rows}),
        "first_url": url_with(request, cursor=None) if cursor else None,
        "next_url": url_with(request, cursor=page.next_cursor) if page.next_cursor else None,
        **LABELS,
    }
    return render(request, "satisfaction/answers.html", ctx, fragment="results")
