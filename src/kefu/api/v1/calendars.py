"""Business calendars: working hours, time zone, holiday provider, 7×24, overrides, and
which unit works by which calendar. Changing a calendar moves no due time of an existing
ticket (see kefu.sla.service)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from kefu.api.v1.common import Cursor, IdempotencyKey, Limit, PageOut, idempotent_create
from kefu.api.v1.deps import CurrentViewer, Db
from kefu.errors import Invalid, NotFound
from kefu.i18n import N_
from kefu.pagination import paginate
from kefu.sla import service as calendars
from kefu.sla.models import BusinessCalendar
from kefu.sla.schemas import (
    CalendarCopy,
    CalendarCreate,
    CalendarOut,
    CalendarUpdate,
    DayOut,
    OverrideIn,
    OverrideOut,
    UnitCalendarIn,
    UnitCalendarOut,
)

router = APIRouter(prefix="/calendars", tags=["calendars"])


def out(row: BusinessCalendar, unit_ids: list[int]) -> CalendarOut:
    return CalendarOut(
        id=row.id,
        name=row.name,
        timezone=row.timezone,
        country=row.country,
        hours=row.hours,
        always_open=row.always_open,
        is_default=row.is_default,
        version=row.version,
        updated_at=row.updated_at,
        unit_ids=unit_ids,
        holiday_data_missing=calendars.missing_years(row),
        overrides=[OverrideOut(day=o.day, hours=o.hours, note=o.note) for o in row.overrides],
    )


def _location(request: Request, path: str) -> str:
    return f"{request.scope.get('root_path', '')}/calendars{path}"


@router.get("", response_model=PageOut[CalendarOut], summary="Calendars the caller sees")
def list_calendars(
    viewer: CurrentViewer, db: Db, limit: Limit = 50, cursor: Cursor = None
) -> PageOut[CalendarOut]:
    page = paginate(
        db, calendars.calendars(viewer), key=BusinessCalendar.id, limit=limit, cursor=cursor
    )
    return PageOut[CalendarOut](
        items=[out(c, calendars.unit_ids(db, c.id)) for c in page.items],
        next_cursor=page.next_cursor,
    )


@router.post("", status_code=201, response_model=CalendarOut, summary="Create a calendar (admins)")
def create_calendar(
    body: CalendarCreate,
    request: Request,
    viewer: CurrentViewer,
    db: Db,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create() -> tuple[CalendarOut, str]:
        row = calendars.create_calendar(db, viewer, body)
        return out(row, []), _location(request, f"/{row.id}")

    return idempotent_create(request, db, viewer, idempotency_key, body, create)


class HolidayWarningOut(BaseModel):
    calendar_id: int
    name: str
    country: str
    years: list[int]


@router.get(
    "/holiday-data",
    response_model=list[HolidayWarningOut],
    summary="Calendars in use whose holiday data lacks this year or, near its end, the next",
)
def holiday_data(viewer: CurrentViewer, db: Db) -> list[HolidayWarningOut]:
    seen = set(calendars.visible_ids(db, viewer))
    return [
        HolidayWarningOut(**w.__dict__)
        for w in calendars.holiday_warnings(db)
        if w.calendar_id in seen
    ]


@router.get(
    "/units/{unit_id}",
    response_model=UnitCalendarOut,
    summary="The business calendar a unit works by (its own, an ancestor's, or the default)",
)
def unit_calendar(unit_id: int, viewer: CurrentViewer, db: Db) -> UnitCalendarOut:
    unit, row, source = calendars.unit_calendar(db, viewer, unit_id)
    if row is None:
        raise NotFound()
    return UnitCalendarOut(
        **out(row, calendars.unit_ids(db, row.id)).model_dump(),
        unit_id=unit.id,
        inherited_from=source,
    )


@router.put(
    "/units/{unit_id}",
    response_model=UnitCalendarOut,
    summary="Choose a unit's calendar (null: inherit); admins and managers above the unit",
)
def assign_calendar(
    unit_id: int, body: UnitCalendarIn, viewer: CurrentViewer, db: Db
) -> UnitCalendarOut:
    calendars.assign_calendar(db, viewer, unit_id, body.calendar_id)
    return unit_calendar(unit_id, viewer, db)


@router.get("/{calendar_id}", response_model=CalendarOut)
def get_calendar(calendar_id: int, viewer: CurrentViewer, db: Db) -> CalendarOut:
    row = calendars.get_calendar(db, viewer, calendar_id)
    return out(row, calendars.unit_ids(db, row.id))


@router.patch(
    "/{calendar_id}",
    response_model=CalendarOut,
    summary="Change a calendar (admins); due times of existing tickets stay as they are",
)
def update_calendar(
    calendar_id: int, body: CalendarUpdate, viewer: CurrentViewer, db: Db
) -> CalendarOut:
    row = calendars.update_calendar(db, viewer, calendar_id, body)
    return out(row, calendars.unit_ids(db, row.id))


@router.delete(
    "/{calendar_id}",
    status_code=204,
    summary="Delete a calendar nobody uses (admins); 409 names the units that still use it",
)
def delete_calendar(calendar_id: int, viewer: CurrentViewer, db: Db) -> Response:
    calendars.delete_calendar(db, viewer, calendar_id)
    return Response(status_code=204)


@router.post(
    "/{calendar_id}/copy",
    status_code=201,
    response_model=CalendarOut,
    summary="Copy a calendar under a new name (admins): hours, zone, holidays and days",
)
def copy_calendar(
    calendar_id: int,
    body: CalendarCopy,
    request: Request,
    viewer: CurrentViewer,
    db: Db,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create() -> tuple[CalendarOut, str]:
        row = calendars.copy_calendar(db, viewer, calendar_id, body)
        return out(row, []), _location(request, f"/{row.id}")

    return idempotent_create(request, db, viewer, idempotency_key, body, create)


def _month(value: str) -> tuple[int, int]:
    try:
        y, m = value.split("-")
        year, month = int(y), int(m)
        if 1900 <= year <= 2200 and 1 <= month <= 12:
            return year, month
    except ValueError:
        pass
    raise Invalid.field("month", N_("Must be a month (YYYY-MM)."))


@router.get(
    "/{calendar_id}/days",
    response_model=list[DayOut],
    summary="A month of days: working or not, the hours, and why",
)
def month_days(
    calendar_id: int,
    viewer: CurrentViewer,
    db: Db,
    month: Annotated[str, Query(max_length=7, description="YYYY-MM")],
) -> list[DayOut]:
    year, month_no = _month(month)
    row = calendars.get_calendar(db, viewer, calendar_id)
    return [DayOut(**d.__dict__) for d in calendars.month(row, year, month_no)]


@router.get("/{calendar_id}/overrides", response_model=list[OverrideOut])
def list_overrides(calendar_id: int, viewer: CurrentViewer, db: Db) -> list[OverrideOut]:
    row = calendars.get_calendar(db, viewer, calendar_id)
    return [OverrideOut(day=o.day, hours=o.hours, note=o.note) for o in row.overrides]


@router.post(
    "/{calendar_id}/overrides",
    status_code=201,
    response_model=OverrideOut,
    summary="Add an extra closed day (no hours) or open day (hours)",
)
def add_override(
    calendar_id: int,
    body: OverrideIn,
    request: Request,
    viewer: CurrentViewer,
    db: Db,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create() -> tuple[OverrideOut, str]:
        o = calendars.add_override(db, viewer, calendar_id, body)
        return (
            OverrideOut(day=o.day, hours=o.hours, note=o.note),
            _location(request, f"/{calendar_id}/overrides/{o.day.isoformat()}"),
        )

    return idempotent_create(request, db, viewer, idempotency_key, body, create)


@router.delete("/{calendar_id}/overrides/{day}", status_code=204)
def remove_override(calendar_id: int, day: date, viewer: CurrentViewer, db: Db) -> Response:
    calendars.remove_override(db, viewer, calendar_id, day)
    return Response(status_code=204)
