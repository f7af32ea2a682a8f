"""Calendars of units, and SLA due times for tickets."""

from __future__ import annotations

from datetime import date, datetime, time
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from kefu import tree
from kefu.sla import holidays, policy
from kefu.sla.models import BusinessCalendar
from kefu.units.models import Unit


def _interval(pair: list[str]) -> policy.Interval:
    a, b = pair
    return time.fromisoformat(a), time.fromisoformat(b)


@lru_cache(maxsize=256)
def _compiled(
    calendar_id: int, version: int, timezone: str, country: str, hours: str, overrides: str
) -> policy.Calendar:
    """An immutable, pure Calendar; keyed by the row's version so edits are seen at once
    in every process (each re-reads the version from the database)."""
    import json

    week = {int(d): tuple(_interval(p) for p in pairs) for d, pairs in json.loads(hours).items()}
    days = {
        date.fromisoformat(d): tuple(_interval(p) for p in pairs)
        for d, pairs in json.loads(overrides).items()
    }
    return policy.Calendar(timezone=timezone, hours=week, overrides=days)


def compile_calendar(row: BusinessCalendar) -> policy.Calendar:
    import json

    overrides = {o.day.isoformat(): o.hours for o in row.overrides}
    return _compiled(
        row.id,
        row.version,
        row.timezone,
        row.country,
        json.dumps(row.hours, sort_keys=True),
        json.dumps(overrides, sort_keys=True),
    )


def calendar_row_for_unit(session: Session, unit_id: int) -> BusinessCalendar | None:
    """The unit's calendar, else its nearest ancestor's, else the default one."""
    path = session.scalar(select(Unit.path).where(Unit.id == unit_id))
    ids = [*tree.ancestor_ids(path), unit_id] if path else [unit_id]
    rows = session.execute(
        select(Unit.depth, Unit.calendar_id)
        .where(Unit.id.in_(ids), Unit.calendar_id.is_not(None))
        .order_by(Unit.depth.desc())
    ).first()
    stmt = select(BusinessCalendar).options(selectinload(BusinessCalendar.overrides))
    if rows is not None:
        return session.scalars(stmt.where(BusinessCalendar.id == rows[1])).first()
    return session.scalars(stmt.where(BusinessCalendar.is_default.is_(True))).first()


def calendar_for_unit(
    session: Session, unit_id: int, always_open: bool = False
) -> tuple[policy.Calendar, holidays.Provider]:
    row = calendar_row_for_unit(session, unit_id)
    if row is None:
        cal, country = policy.Calendar(), "CN"
    else:
        cal, country = compile_calendar(row), row.country
    if always_open:
        cal = policy.Calendar(timezone=cal.timezone, always_open=True)
    return cal, holidays.provider_for(country)


def due(
    session: Session,
    unit_id: int,
    start: datetime,
    minutes: float,
    always_open: bool = False,
    pauses: list[tuple[datetime, datetime | None]] | None = None,
) -> datetime:
    cal, provider = calendar_for_unit(session, unit_id, always_open)
    return policy.due_at(cal, start, minutes, provider, pauses)


def minutes_between(
    session: Session, unit_id: int, start: datetime, end: datetime, always_open: bool = False
) -> float:
    cal, provider = calendar_for_unit(session, unit_id, always_open)
    return policy.business_minutes(cal, start, end, provider)


def describe(row: BusinessCalendar) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "timezone": row.timezone,
        "country": row.country,
        "hours": row.hours,
        "is_default": row.is_default,
        "version": row.version,
        "overrides": [
            {"day": o.day.isoformat(), "hours": o.hours, "note": o.note} for o in row.overrides
        ],
    }
