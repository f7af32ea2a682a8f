"""Business calendars (工作日历): working hours per weekday, time zone, holiday provider,
7×24, the unit's own extra closed or open days, which units work by a calendar, and a
month view that says for each day whether it works and why.

Everyone signed in may read the calendars they see (those that govern their work). Who
may change what is decided in kefu.sla.service: settings are for administrators; unit
assignment for administrators and the unit's managers; days for administrators and the
managers above every unit of the calendar. Others do not see the forms, and their POSTs
are refused (404 when the record is out of their scope, else 403).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from kefu.errors import Conflict, FieldError, Invalid
from kefu.i18n import N_
from kefu.sla import holidays, policy
from kefu.sla import service as calendars
from kefu.sla.models import BusinessCalendar
from kefu.sla.schemas import CalendarCopy, CalendarCreate, CalendarUpdate, OverrideIn
from kefu.units import queries as unit_queries
from kefu.units.models import Unit
from kefu.web.common import (
    NOTICES,
    CurrentMe,
    Db,
    Form,
    Me,
    PostedForm,
    all_rows,
    env,
    level,
    parse,
    redirect,
    render,
    text,
)

router = APIRouter()
env.globals.setdefault("cx", env.get_template("customers/_macros.html").module)  # type: ignore[attr-defined]
env.filters["pair"] = lambda value: (value, value)
env.filters["unit_option"] = lambda unit: (unit.id, f"{unit.name} · {level(unit)}")

WEEKDAYS = (
    N_("Monday"),
    N_("Tuesday"),
    N_("Wednesday"),
    N_("Thursday"),
    N_("Friday"),
    N_("Saturday"),
    N_("Sunday"),
)
WEEKDAYS_SHORT = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))
REASONS = {
    policy.OVERRIDE_OPEN: N_("Extra open day"),
    policy.OVERRIDE_CLOSED: N_("Extra closed day"),
    policy.HOLIDAY: N_("Statutory holiday"),
    policy.MAKEUP: N_("Make-up working day (调休)"),
    policy.WEEKDAY: N_("Working day"),
    policy.WEEKEND: N_("Weekend"),
    policy.UNCOVERED: N_("No holiday data: weekly hours"),
    policy.ALWAYS: N_("7×24"),
}
NOT_A_MONTH = N_("Must be a month (YYYY-MM).")
DEFAULT_WEEK = {str(d): [["08:30", "12:00"], ["13:30", "17:30"]] for d in range(5)}
HOURS_HINT = N_("For example 08:30-12:00, 13:30-17:30; empty: closed.")
NOTICES.setdefault("deleted", N_("Deleted."))


def hours_text(pairs: list[list[str]]) -> str:
    """[["08:30", "12:00"], …] → "08:30-12:00, …" (an end of 00:00 shows as 24:00)."""
    return ", ".join(f"{a}-{'24:00' if b == '00:00' else b}" for a, b in pairs)


def parse_hours(value: str) -> list[list[str]]:
    """ "08:30-12:00, 13:30-17:30" → pairs; a piece without two times stays as it is, so
    the service names what is wrong with it."""
    out: list[list[str]] = []
    for piece in re.split(r"[,，;；\s]+", value.strip()):
        if not piece:
            continue
        parts = [p for p in re.split(r"[-–~～至]", piece) if p]
        out.append([p.strip() for p in parts] if len(parts) == 2 else [piece, ""])
    return out


def _named(errors: list[FieldError]) -> list[FieldError]:
    """'hours.3.1' → the form field 'h3'; an override's 'hours.0' → 'o_hours'."""
    out = []
    for e in errors:
        parts = e.field.split(".")
        name = e.field
        if parts[0] == "hours" and len(parts) >= 3:
            name = f"h{parts[1]}"
        elif parts[0] == "hours":
            name = "o_hours"
        elif parts[0] in ("day", "note"):
            name = f"o_{parts[0]}"
        out.append(FieldError(name, e.message, e.params))
    return out


def _month_of(request: Request, row: BusinessCalendar) -> tuple[int, int]:
    wanted = request.query_params.get("month", "")
    found = re.fullmatch(r"(\d{4})-(\d{2})", wanted)
    if found and 1900 <= int(found.group(1)) <= 2200 and 1 <= int(found.group(2)) <= 12:
        return int(found.group(1)), int(found.group(2))
    today = calendars.local_today(row)
    return today.year, today.month


def _shift(year: int, month: int, by: int) -> str:
    n = year * 12 + (month - 1) + by
    return f"{n // 12:04d}-{n % 12 + 1:02d}"


def _settings_values(row: BusinessCalendar) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": row.name,
        "timezone": row.timezone,
        "country": row.country,
        "always_open": row.always_open,
        "version": row.version,
    }
    values.update({f"h{d}": hours_text(row.hours.get(str(d), [])) for d in range(7)})
    return values


def _override_values() -> dict[str, Any]:
    return {"o_day": "", "o_hours": "", "o_note": ""}


def _detail(
    request: Request,
    db: Session,
    me: Me,
    calendar_id: int,
    *,
    settings: Form | None = None,
    override: Form | None = None,
    assign: Form | None = None,
    copy: Form | None = None,
    delete: Form | None = None,
    status: int = 200,
) -> Response:
    row = calendars.get_calendar(db, me.viewer, calendar_id)  # unseen: 404
    year, month = _month_of(request, row)
    days = calendars.month(row, year, month)
    viewer = me.viewer
    assignable: list[Unit] = []
    if viewer.has_role("manager"):
        assignable = all_rows(db, unit_queries.units(viewer, active=True), Unit.path)
    ctx = {
        "cal": row,
        "units": calendars.assigned_units(db, row.id),
        "missing": calendars.missing_years(row),
        "can_admin": viewer.is_admin,
        "can_days": calendars.may_edit_overrides(db, viewer, row),
        "assignable": assignable,
        "year": year,
        "month": month,
        "month_label": f"{year:04d}-{month:02d}",
        "prev_month": _shift(year, month, -1),
        "next_month": _shift(year, month, 1),
        "lead": date(year, month, 1).weekday(),
        "days": days,
        "reasons": REASONS,
        "weekdays": WEEKDAYS,
        "weekdays_short": WEEKDAYS_SHORT,
        "countries": holidays.countries(),
        "hours_text": hours_text,
        "hours_hint": HOURS_HINT,
        "settings": settings or Form(_settings_values(row), key="cal"),
        "override": override or Form(_override_values(), key="ov"),
        "assign": assign or Form({"unit_id": ""}, key="as"),
        "copy": copy or Form({"c_name": ""}, key="cp"),
        "delete": delete or Form({}, key="del"),
    }
    return render(request, "calendars/detail.html", ctx, status=status)


@router.get("/calendars")
def list_calendars(request: Request, me: CurrentMe, db: Db) -> Response:
    return _list(request, db, me)


def _list(
    request: Request, db: Session, me: Me, form: Form | None = None, status: int = 200
) -> Response:
    rows = all_rows(db, calendars.calendars(me.viewer), BusinessCalendar.id)
    warnings = calendars.holiday_warnings(db) if me.viewer.is_admin else []
    return render(
        request,
        "calendars/list.html",
        {
            "calendars": [
                (c, calendars.assigned_units(db, c.id), calendars.missing_years(c)) for c in rows
            ],
            "warnings": warnings,
            "form": form
            or Form({"name": "", "timezone": "Asia/Shanghai", "country": "CN"}, key="new"),
            "countries": holidays.countries(),
            "can_admin": me.viewer.is_admin,
        },
        status=status,
    )


@router.post("/calendars")
def create_calendar(request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    values = {f: text(form, f).strip() for f in ("name", "timezone", "country")}
    try:
        with db.begin_nested():
            data = parse(CalendarCreate, {**values, "hours": DEFAULT_WEEK})
            row = calendars.create_calendar(db, me.viewer, data)
    except Invalid as exc:
        db.expire_all()
        return _list(request, db, me, Form(values, exc.errors, key="new"), status=422)
    return redirect(request, f"/calendars/{row.id}", "created")


@router.get("/calendars/{calendar_id}")
def calendar_page(calendar_id: int, request: Request, me: CurrentMe, db: Db) -> Response:
    return _detail(request, db, me, calendar_id)


def _settings_form(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {
        f: text(form, f).strip() for f in ("name", "timezone", "country", "version")
    }
    values["always_open"] = text(form, "always_open") == "1"
    values.update({f"h{d}": text(form, f"h{d}") for d in range(7)})
    return values


@router.post("/calendars/{calendar_id}")
def edit_calendar(
    calendar_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    values = _settings_form(form)
    data = {
        "name": values["name"],
        "timezone": values["timezone"],
        "country": values["country"],
        "always_open": values["always_open"],
        "hours": {str(d): parse_hours(values[f"h{d}"]) for d in range(7)},
        "version": int(values["version"]) if values["version"].isdigit() else None,
    }
    try:
        with db.begin_nested():
            calendars.update_calendar(db, me.viewer, calendar_id, parse(CalendarUpdate, data))
    except Invalid as exc:
        db.expire_all()
        bad = Form(values, _named(exc.errors), key="cal")
        return _detail(request, db, me, calendar_id, settings=bad, status=422)
    return redirect(request, f"/calendars/{calendar_id}", "saved")


@router.post("/calendars/{calendar_id}/overrides")
def add_override(
    calendar_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    values = {f: text(form, f).strip() for f in ("o_day", "o_hours", "o_note")}
    data = {
        "day": values["o_day"],
        "hours": parse_hours(values["o_hours"]),
        "note": values["o_note"],
    }
    try:
        with db.begin_nested():
            calendars.add_override(db, me.viewer, calendar_id, parse(OverrideIn, data))
    except Invalid as exc:
        db.expire_all()
        bad = Form(values, _named(exc.errors), key="ov")
        return _detail(request, db, me, calendar_id, override=bad, status=422)
    month = values["o_day"][:7]
    return redirect(request, f"/calendars/{calendar_id}?month={month}#days", "saved")


@router.post("/calendars/{calendar_id}/overrides/{day}/delete")
def remove_override(
    calendar_id: int, day: date, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    calendars.remove_override(db, me.viewer, calendar_id, day)
    return redirect(request, f"/calendars/{calendar_id}?month={day:%Y-%m}#days", "saved")


@router.post("/calendars/{calendar_id}/units")
def assign_unit(
    calendar_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    calendars.get_calendar(db, me.viewer, calendar_id)  # unseen: 404
    raw = text(form, "unit_id").strip()
    if not raw.isdigit():
        bad = Form(
            {"unit_id": raw}, [FieldError("unit_id", N_("This field is required."))], key="as"
        )
        return _detail(request, db, me, calendar_id, assign=bad, status=422)
    calendars.assign_calendar(db, me.viewer, int(raw), calendar_id)
    return redirect(request, f"/calendars/{calendar_id}#units", "saved")


@router.post("/calendars/{calendar_id}/units/{unit_id}/inherit")
def unassign_unit(
    calendar_id: int, unit_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    calendars.get_calendar(db, me.viewer, calendar_id)
    calendars.assign_calendar(db, me.viewer, unit_id, None)
    return redirect(request, f"/calendars/{calendar_id}#units", "saved")


@router.post("/calendars/{calendar_id}/copy")
def copy_calendar(
    calendar_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    values = {"c_name": text(form, "c_name").strip()}
    try:
        with db.begin_nested():
            data = parse(CalendarCopy, {"name": values["c_name"]})
            row = calendars.copy_calendar(db, me.viewer, calendar_id, data)
    except Invalid as exc:
        db.expire_all()
        errors = [
            FieldError("c_" + e.field if e.field == "name" else e.field, e.message, e.params)
            for e in exc.errors
        ]
        bad = Form(values, errors, key="cp")
        return _detail(request, db, me, calendar_id, copy=bad, status=422)
    return redirect(request, f"/calendars/{row.id}", "created")


@router.post("/calendars/{calendar_id}/delete")
def delete_calendar(
    calendar_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    try:
        with db.begin_nested():
            calendars.delete_calendar(db, me.viewer, calendar_id)
    except Conflict as exc:
        db.expire_all()
        bad = Form({}, exc.errors, key="del")
        return _detail(request, db, me, calendar_id, delete=bad, status=409)
    return redirect(request, "/calendars", "deleted")
