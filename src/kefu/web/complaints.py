"""Complaints in the web: the register (per 100 customers by sub-unit, cause and month) with
the open complaints, and a complaint's page with analysis, compensation and verification."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from kefu.clock import now
from kefu.complaints import queries
from kefu.complaints import service as complaints
from kefu.complaints.models import Complaint
from kefu.complaints.schemas import ComplaintUpdate, DecisionIn, VerifyIn
from kefu.customers.models import Customer
from kefu.errors import Conflict, FieldError, Invalid
from kefu.i18n import N_, get_locale
from kefu.pagination import paginate
from kefu.tickets.models import Ticket
from kefu.tickets.queries import rows_by_id
from kefu.units import service as units
from kefu.units.models import Unit
from kefu.web import charts
from kefu.web.common import (
    CurrentMe,
    Db,
    Form,
    Me,
    PostedForm,
    env,
    parse,
    redirect,
    render,
    text,
    url_with,
)
from kefu.web.satisfaction import _crumbs, _year

router = APIRouter()
env.globals["month_label"] = charts.month_label
PAGE_SIZE = 25
SEVERITY_LABELS = {1: N_("Minor"), 2: N_("Major"), 3: N_("Critical")}
COMPENSATION_LABELS = {
    "none": N_("None"),
    "pending": N_("Waiting for approval"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
}
STALE = N_("Someone else changed this record; reload it and try again.")


def _cause_names(db: Session) -> dict[str, str]:
    english = get_locale() == "en"
    return {c.code: (c.name_en if english else c.name_zh) for c in complaints.causes(db)}


def _labels(db: Session) -> dict[str, Any]:
    return {
        "SEVERITY_LABELS": SEVERITY_LABELS,
        "COMPENSATION_LABELS": COMPENSATION_LABELS,
        "cause_names": _cause_names(db),
    }


@router.get("/complaints")
def register_page(request: Request, me: CurrentMe, db: Db) -> Response:
    p = request.query_params
    raw = p.get("unit_id", "")
    unit = units.get_unit(db, me.viewer, int(raw) if raw.isdigit() else me.unit_id)
    year = _year(p.get("year"), now().year)
    start, end = date(year, 1, 1), date(year, 12, 31)
    by_unit = queries.register(db, unit, start, end, "unit")
    cursor = p.get("cursor") or None
    page = paginate(
        db,
        queries.complaints(db, me.viewer, open_only=True),
        key=Complaint.id,
        limit=PAGE_SIZE,
        cursor=cursor,
        descending=True,
    )
    rows = page.items
    ctx = {
        "unit": unit,
        "year": year,
        "years": list(range(now().year, now().year - 4, -1)),
        "crumbs": _crumbs(db, me, unit),
        "by_unit": by_unit,
        "by_cause": queries.register(db, unit, start, end, "cause"),
        "by_month": queries.register(db, unit, start, end, "month"),
        "unit_names": rows_by_id(db, Unit, {r.key for r in by_unit}),
        "open": rows,
        "customers": rows_by_id(db, Customer, {c.customer_id for c in rows}),
        "tickets": rows_by_id(db, Ticket, {c.ticket_id for c in rows}),
        "first_url": url_with(request, cursor=None) if cursor else None,
        "next_url": url_with(request, cursor=page.next_cursor) if page.next_cursor else None,
        **_labels(db),
    }
    return render(request, "complaints/register.html", ctx, fragment="results")


def _page(
    request: Request,
    db: Session,
    me: Me,
    complaint_id: int,
    *,
    status: int = 200,
    forms: dict[str, Form] | None = None,
) -> Response:
    c = complaints.get_complaint(db, me.viewer, complaint_id)
    forms = forms or {}
    ctx = {
        "c": c,
        "ticket": db.get(Ticket, c.ticket_id),
        "customer": db.get(Customer, c.customer_id),
        "repeat_of": db.get(Complaint, c.repeat_of_id) if c.repeat_of_id else None,
        "analysis": forms.get("analysis")
        or Form(
            {
                "severity": c.severity,
                "cause_code": c.cause_code or "",
                "remedy": c.remedy,
                "compensation": "" if c.compensation is None else str(c.compensation),
            },
            key="analysis",
        ),
        "decision": forms.get("decision") or Form({"note": ""}, key="decision"),
        "verify": forms.get("verify") or Form({"verification": ""}, key="verify"),
        "severity_options": [(k, v) for k, v in SEVERITY_LABELS.items()],
        **_labels(db),
    }
    return render(request, "complaints/complaint.html", ctx, status=status)


@router.get("/complaints/{complaint_id}")
def complaint_page(complaint_id: int, request: Request, me: CurrentMe, db: Db) -> Response:
    return _page(request, db, me, complaint_id)


def _version(form: FormData) -> int:
    raw = text(form, "version")
    return int(raw) if raw.isdigit() else -1


def _errors(exc: Invalid | Conflict) -> list[FieldError]:
    return exc.errors if isinstance(exc, Invalid) else [FieldError("version", STALE)]


def _amount(raw: str) -> Any:
    raw = raw.strip().replace(",", "")
    if not raw:
        return None
    try:
        return Decimal(raw)
    except InvalidOperation:
        return raw  # the schema names the field


def _act(
    request: Request,
    db: Session,
    me: Me,
    complaint_id: int,
    form_key: str,
    values: dict[str, str],
    act: Callable[[], object],
) -> Response:
    """One form of the complaint page: run `act` whole or not at all; on refusal the page
    again with the form's values and the errors beside its fields."""
    try:
        with db.begin_nested():
            act()
    except (Invalid, Conflict) as exc:
        db.expire_all()
        bad = Form(values, _errors(exc), key=form_key)
        code = 409 if isinstance(exc, Conflict) else 422
        return _page(request, db, me, complaint_id, status=code, forms={form_key: bad})
    return redirect(request, f"/complaints/{complaint_id}", "saved")


@router.post("/complaints/{complaint_id}")
def analyse(
    complaint_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    complaints.get_complaint(db, me.viewer, complaint_id)
    values = {k: text(form, k) for k in ("severity", "cause_code", "remedy", "compensation")}

    def act() -> object:
        data = parse(
            ComplaintUpdate,
            {
                "version": _version(form),
                "severity": int(values["severity"]) if values["severity"].isdigit() else None,
                "cause_code": values["cause_code"] or None,
                "remedy": values["remedy"],
                "compensation": _amount(values["compensation"]),
            },
        )
        return complaints.update(db, me.viewer, complaint_id, data)

    return _act(request, db, me, complaint_id, "analysis", values, act)


@router.post("/complaints/{complaint_id}/compensation")
def decide(
    complaint_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    complaints.get_complaint(db, me.viewer, complaint_id)
    values = {"note": text(form, "note")}
    approve = text(form, "approve") == "1"

    def act() -> object:
        data = parse(DecisionIn, {"version": _version(form), "approve": approve, **values})
        return complaints.decide(db, me.viewer, complaint_id, data)

    return _act(request, db, me, complaint_id, "decision", values, act)


@router.post("/complaints/{complaint_id}/verify")
def verify(
    complaint_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    complaints.get_complaint(db, me.viewer, complaint_id)
    values = {"verification": text(form, "verification")}

    def act() -> object:
        data = parse(VerifyIn, {"version": _version(form), **values})
        return complaints.verify(db, me.viewer, complaint_id, data)

    return _act(request, db, me, complaint_id, "verify", values, act)
