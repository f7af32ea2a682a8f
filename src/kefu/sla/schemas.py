"""Input and output of business calendars (API and admin pages share them)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from kefu.i18n import N_
from kefu.sla.holidays import known_country
from kefu.validation import Input, KefuValueError, Name, TimeZone


def _country(value: str) -> str:
    if not known_country(value):
        raise KefuValueError(N_("Unknown country: no holiday data for it."))
    return value.upper()


Time = Annotated[str, StringConstraints(min_length=1, max_length=5)]
Interval = Annotated[list[Time], Field(min_length=2, max_length=2)]
DayHours = Annotated[list[Interval], Field(max_length=6)]
Weekday = Annotated[str, StringConstraints(pattern=r"^[0-6]$")]
Country = Annotated[str, StringConstraints(min_length=2, max_length=2), AfterValidator(_country)]
Note = Annotated[str, StringConstraints(max_length=200)]


class CalendarCreate(Input):
    name: Name
    timezone: TimeZone = "Asia/Shanghai"
    country: Country = Field(
        "CN", description="CN: statutory holidays and 调休 via chinese-calendar; else holidays."
    )
    hours: dict[Weekday, DayHours] = Field(
        description='Working hours per weekday, Monday "0": {"0": [["08:30", "12:00"]]}.'
    )
    always_open: bool = Field(False, description="7×24: every instant is working time.")


class CalendarUpdate(Input):
    version: int | None = Field(
        None, description="The version you read; a stale one gets 409 (optional)."
    )
    name: Name | None = None
    timezone: TimeZone | None = None
    country: Country | None = None
    hours: dict[Weekday, DayHours] | None = None
    always_open: bool | None = None


class CalendarCopy(Input):
    name: Name = Field(
        description="The copy's name; it gets the hours, zone, holidays, 7×24 flag and days."
    )


class OverrideIn(Input):
    day: date
    hours: DayHours = Field(
        default_factory=list, description="Empty: an extra closed day; else an extra open day."
    )
    note: Note = ""


class OverrideOut(BaseModel):
    day: date
    hours: list[list[str]]
    note: str


class CalendarOut(BaseModel):
    id: int
    name: str
    timezone: str
    country: str
    hours: dict[str, list[list[str]]]
    always_open: bool
    is_default: bool
    version: int
    updated_at: datetime
    unit_ids: list[int] = Field(
        description="Units assigned this calendar (their subtrees inherit it)."
    )
    holiday_data_missing: list[int] = Field(
        description="Years in use (this and, near its end, the next) the holiday data lacks."
    )
    overrides: list[OverrideOut]


class UnitCalendarIn(Input):
    calendar_id: int | None = Field(description="None: inherit from the parent unit.")


class UnitCalendarOut(CalendarOut):
    unit_id: int
    inherited_from: int | None = Field(
        description="The unit whose assignment applies; None: the default calendar."
    )


class DayOut(BaseModel):
    day: date
    working: bool
    hours: list[list[str]]
    reason: str = Field(
        description="override_open, override_closed, holiday, makeup, weekday, weekend, "
        "uncovered (no holiday data: weekly hours alone) or always_open."
    )
    holiday: str | None
    note: str
