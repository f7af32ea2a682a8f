"""Calendars of units, SLA due times for tickets, and the administration of calendars.

Who may change what:
- create, copy or delete a calendar, change its name, zone, country, weekly hours or 7×24
  flag: administrators only (a calendar is shared by every unit below the ones it is
  assigned to). A calendar in use — the default one, one assigned to a unit, or one any
  other row refers to — is not deleted; the refusal names what uses it;
- assign a calendar to a unit (or back to inheriting): administrators, and managers whose
  subtree holds the unit, with a calendar they can see;
- add or remove overrides (the unit's own extra closed or open days): administrators, and
  managers whose subtree holds every unit the calendar is assigned to — so the change
  stays inside their subtree. The default calendar is the administrators' alone.

Changing a calendar moves no due time of an existing ticket: a ticket's due times are the
promise made when it was opened (like its service-level version). New tickets, and the
clock of a ticket resuming after a pause, use the calendar as it is then.
"""

from __future__ import annotations

import calendar as monthly
import copy
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from kefu import cache, i18n, tree
from kefu.audit.service import diff, record
from kefu.cache import KeyedCache
from kefu.clock import now
from kefu.db import padded
from kefu.errors import Conflict, FieldError, Forbidden, Invalid, NotFound
from kefu.i18n import N_
from kefu.scope import Viewer, get_visible, visible
from kefu.sla import holidays, policy
from kefu.sla.models import BusinessCalendar, CalendarOverride
from kefu.sla.schemas import CalendarCopy, CalendarCreate, CalendarUpdate, OverrideIn
from kefu.units.models import Unit


def _interval(pair: list[str]) -> policy.Interval:
    a, b = pair
    return time.fromisoformat(a), time.fromisoformat(b)


@lru_cache(maxsize=256)
def _compiled(
    calendar_id: int,
    version: int,
    timezone: str,
    country: str,
    hours: str,
    overrides: str,
    always_open: bool = False,
) -> policy.Calendar:
    """An immutable, pure Calendar; keyed by the row's version so edits are seen at once
    in every process (each re-reads the version from the database)."""
    import json

    week = {int(d): tuple(_interval(p) for p in pairs) for d, pairs in json.loads(hours).items()}
    days = {
        date.fromisoformat(d): tuple(_interval(p) for p in pairs)
        for d, pairs in json.loads(overrides).items()
    }
    return policy.Calendar(timezone=timezone, hours=week, overrides=days, always_open=always_open)


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
        bool(row.always_open),
    )


def calendar_row_for_unit(session: Session, unit_id: int) -> BusinessCalendar | None:
    """The unit's calendar, else its nearest ancestor's, else the default one."""
    ref = calendar_ref(session, unit_id)
    if ref is None:
        return None
    stmt = select(BusinessCalendar).options(selectinload(BusinessCalendar.overrides))
    return session.scalars(stmt.where(BusinessCalendar.id == ref[0])).first()


Ref = tuple[int, int, str]  # a calendar's (id, version, stamp): what makes it immutable


def calendar_ref(session: Session, unit_id: int, path: str | None = None) -> Ref | None:
    """(id, version, stamp) of the calendar that governs the unit — its own, else its nearest
    ancestor's, else the default one — in one query when the unit's `path` is known."""
    known = {unit_id: path} if path else {}
    return cache.configuration(
        session,
        ("calendar_ref", unit_id),
        lambda: _calendar_refs(session, {unit_id}, known)[unit_id],
    )


def _calendar_refs(
    session: Session, unit_ids: set[int], paths: dict[int, str]
) -> dict[int, Ref | None]:
    """`calendar_ref` of many units in one query, two when some paths are not known."""
    unknown = sorted(u for u in unit_ids if u not in paths)
    if unknown:
        found = session.execute(select(Unit.id, Unit.path).where(Unit.id.in_(padded(unknown))))
        paths = {**paths, **dict(found.all())}
    chains = {u: [*tree.ancestor_ids(paths[u]), u] if paths.get(u) else [u] for u in unit_ids}
    # The calendars of the chains' units and the default one, in one query: a calendar
    # row with each unit of the chains that has it, the default one also without.
    own: dict[int, tuple[int, tuple[int, int, str]]] = {}
    defaults: list[tuple[int, int, str]] = []
    for unit_id, depth, calendar_id, version, stamp, is_default in session.execute(
        select(
            Unit.id,
            Unit.depth,
            BusinessCalendar.id,
            BusinessCalendar.version,
            BusinessCalendar.stamp,
            BusinessCalendar.is_default,
        )
        .select_from(BusinessCalendar)
        .outerjoin(
            Unit,
            and_(
                Unit.calendar_id == BusinessCalendar.id,
                Unit.id.in_(padded(u for chain in chains.values() for u in chain)),
            ),
        )
        .where(or_(Unit.id.is_not(None), BusinessCalendar.is_default.is_(True)))
    ):
        if unit_id is not None:
            own[unit_id] = (depth, (calendar_id, version, stamp))
        if is_default:
            defaults.append((calendar_id, version, stamp))
    default = min(defaults) if defaults else None
    out: dict[int, Ref | None] = {}
    for unit_id, chain in chains.items():
        mine = [own[u] for u in chain if u in own]
        out[unit_id] = max(mine)[1] if mine else default
    return out


def read_calendar_refs(session: Session, unit_ids: set[int], paths: dict[int, str]) -> None:
    """`calendar_ref` of many units at once, for a batch of work inside a `reads_once`
    block (else nothing to do)."""
    if cache.memo(session) is None:
        return
    wanted = {u for u in unit_ids if not cache.known(session, ("calendar_ref", u))}
    if wanted:
        for unit_id, ref in _calendar_refs(session, wanted, paths).items():
            cache.keep(session, ("calendar_ref", unit_id), ref)


# Compiled calendars by (calendar id, version, stamp) (see kefu.cache): every use first
# reads the governing calendar's id, version and stamp from the database (calendar_ref),
# and every change to a calendar or its overrides bumps its version and renews its stamp
# (BusinessCalendar.touch), so an edit made by another process is seen by the next ticket
# here. The stamp is random, so a deleted calendar's entry is never served for a calendar
# that gets its id again (SQLite reuses the highest id), nor is a rolled-back change's.
_COMPILED: KeyedCache[tuple[policy.Calendar, str]] = KeyedCache()


def _compiled_by_ref(session: Session, ref: Ref) -> tuple[policy.Calendar, str]:
    hit = _COMPILED.get(ref)
    if hit is not None:
        return hit
    row = session.scalars(
        select(BusinessCalendar)
        .options(selectinload(BusinessCalendar.overrides))
        .where(BusinessCalendar.id == ref[0])
    ).first()
    if row is None:  # deleted meanwhile: the built-in default
        return policy.Calendar(), "CN"
    # Keyed by the version read now, which may be newer than the reference.
    key = (row.id, row.version, row.stamp)
    return _COMPILED.put(key, (compile_calendar(row), row.country))


def calendar_for_unit(
    session: Session, unit_id: int, always_open: bool = False, *, path: str | None = None
) -> tuple[policy.Calendar, holidays.Provider]:
    """The unit's compiled calendar and holiday provider: one query (two without the
    unit's `path`) when this process has compiled that calendar version already."""
    ref = calendar_ref(session, unit_id, path)
    cal, country = _compiled_by_ref(session, ref) if ref is not None else (policy.Calendar(), "CN")
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


def due_times(
    session: Session,
    unit_id: int,
    start: datetime,
    minutes: list[float],
    always_open: bool = False,
    *,
    path: str | None = None,
) -> list[datetime]:
    """Several due instants from one start, with one calendar look-up."""
    cal, provider = calendar_for_unit(session, unit_id, always_open, path=path)
    return [policy.due_at(cal, start, m, provider) for m in minutes]


def minutes_between(
    session: Session, unit_id: int, start: datetime, end: datetime, always_open: bool = False
) -> float:
    cal, provider = calendar_for_unit(session, unit_id, always_open)
    return policy.business_minutes(cal, start, end, provider)


# --- administration -----------------------------------------------------------------------

WARN_DAYS = 60  # within this many days of a year's end, the next year must be covered too
OVERRIDE_PAST_DAYS = 366  # overrides reach back one year …
OVERRIDE_FUTURE_DAYS = 3 * 366  # … and forward as far as due times are computed
EDIT_DAYS_REFUSED = N_(
    "Only administrators, and managers above every unit of this calendar, may change its days."
)
AUDITED = ("name", "timezone", "country", "hours", "always_open")


def _load(session: Session, viewer: Viewer, calendar_id: int, for_update: bool = False) -> Any:
    return get_visible(
        session,
        BusinessCalendar,
        calendar_id,
        viewer,
        options=(selectinload(BusinessCalendar.overrides),),
        for_update=for_update,
    )


def calendars(viewer: Viewer) -> Any:
    """The calendars the viewer sees (for a cursor-paginated list by id)."""
    return visible(
        select(BusinessCalendar).options(selectinload(BusinessCalendar.overrides)),
        BusinessCalendar,
        viewer,
    )


def get_calendar(session: Session, viewer: Viewer, calendar_id: int) -> BusinessCalendar:
    row: BusinessCalendar = _load(session, viewer, calendar_id)
    return row


def unit_ids(session: Session, calendar_id: int) -> list[int]:
    """The units this calendar is assigned to (their subtrees inherit it)."""
    return list(
        session.scalars(select(Unit.id).where(Unit.calendar_id == calendar_id).order_by(Unit.path))
    )


def assigned_units(session: Session, calendar_id: int) -> list[Unit]:
    return list(
        session.scalars(
            select(Unit)
            .where(Unit.calendar_id == calendar_id)
            .order_by(Unit.path)
            .options(selectinload(Unit.functions))
        )
    )


def _check_day(pairs: list[list[str]], prefix: str) -> list[FieldError]:
    return [FieldError(f"{prefix}.{i}", msg) for i, msg in policy.check_intervals(pairs)]


def _check_hours(hours: dict[str, list[list[str]]]) -> None:
    errors = [e for day, pairs in sorted(hours.items()) for e in _check_day(pairs, f"hours.{day}")]
    if errors:
        raise Invalid(errors=errors)


def _check_country(country: str) -> str:
    if not holidays.known_country(country):
        raise Invalid.field("country", N_("Unknown country: no holiday data for it."))
    return country.upper()


def _snapshot(row: BusinessCalendar) -> dict[str, Any]:
    return {f: getattr(row, f) for f in AUDITED}


def _require_admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise Forbidden(N_("Only administrators may change business calendars."))


def create_calendar(session: Session, viewer: Viewer, data: CalendarCreate) -> BusinessCalendar:
    _require_admin(viewer)
    country = _check_country(data.country)
    _check_hours(data.hours)
    row = BusinessCalendar(
        name=data.name,
        timezone=data.timezone,
        country=country,
        hours={d: policy.normalised(p) for d, p in sorted(data.hours.items()) if p},
        always_open=data.always_open,
        is_default=False,
        version=1,
    )
    session.add(row)
    session.flush()
    record(session, viewer, "calendar.create", "calendar", row.id, diff({}, _snapshot(row)))
    return _load(session, viewer, row.id)  # type: ignore[no-any-return]


def update_calendar(
    session: Session, viewer: Viewer, calendar_id: int, data: CalendarUpdate
) -> BusinessCalendar:
    row: BusinessCalendar = _load(session, viewer, calendar_id, for_update=True)  # 404 first
    _require_admin(viewer)
    if data.version is not None and data.version != row.version:
        raise Conflict(
            N_("Someone else changed this calendar meanwhile; reload it and try again."),
            params={"version": row.version},
        )
    before = _snapshot(row)
    fields = data.model_dump(exclude_unset=True)
    if fields.get("country") is not None:
        row.country = _check_country(fields["country"])
    if fields.get("hours") is not None:
        _check_hours(fields["hours"])
        row.hours = {d: policy.normalised(p) for d, p in sorted(fields["hours"].items()) if p}
    for name in ("name", "timezone", "always_open"):
        if fields.get(name) is not None:
            setattr(row, name, fields[name])
    changes = diff(before, _snapshot(row))
    if changes:
        row.touch()
        session.flush()
        record(session, viewer, "calendar.update", "calendar", row.id, changes)
    return row


def copy_calendar(
    session: Session, viewer: Viewer, calendar_id: int, data: CalendarCopy
) -> BusinessCalendar:
    """A new calendar with the source's zone, holidays, weekly hours, 7×24 flag and the
    unit's own days, under a new name; assigned to no unit."""
    src: BusinessCalendar = _load(session, viewer, calendar_id)  # 404 first
    _require_admin(viewer)
    row = BusinessCalendar(
        name=data.name,
        timezone=src.timezone,
        country=src.country,
        hours=copy.deepcopy(src.hours),
        always_open=src.always_open,
        is_default=False,
        version=1,
    )
    row.overrides = [
        CalendarOverride(day=o.day, hours=copy.deepcopy(o.hours), note=o.note)
        for o in src.overrides
    ]
    session.add(row)
    session.flush()
    changes = diff({}, _snapshot(row))
    changes["copied_from"] = {"before": None, "after": src.id}
    changes.update(_override_changes(row.overrides, deleted=False))
    record(session, viewer, "calendar.copy", "calendar", row.id, changes)
    return _load(session, viewer, row.id)  # type: ignore[no-any-return]


def _override_changes(overrides: list[CalendarOverride], deleted: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for o in overrides:
        value = {"hours": o.hours, "note": o.note}
        key = f"override:{o.day.isoformat()}"
        out[key] = {"before": value, "after": None} if deleted else {"before": None, "after": value}
    return out


IN_USE_BY_UNITS = N_("This calendar is still used by {units}: give them another calendar first.")
IN_USE_BY_OTHERS = N_("This calendar is still referred to by {what}: remove those first.")
DEFAULT_NOT_DELETED = N_(
    "The default calendar cannot be deleted: every unit without a calendar of its own works by it."
)


def _other_references(session: Session, calendar_id: int) -> list[str]:
    """Tables other than units and the calendar's own days that point at this calendar
    (none today; a later one refuses the delete without a change here), with row counts."""
    from sqlalchemy import Table

    own = {BusinessCalendar.__table__, CalendarOverride.__table__, Unit.__table__}
    found = []
    for table in BusinessCalendar.metadata.sorted_tables:
        if table in own or not isinstance(table, Table):
            continue
        for fk in table.foreign_keys:
            if fk.column.table is BusinessCalendar.__table__:
                n = session.scalar(
                    select(func.count()).select_from(table).where(fk.parent == calendar_id)
                )
                if n:
                    found.append(f"{table.name} ({n})")
    return found


def delete_calendar(session: Session, viewer: Viewer, calendar_id: int) -> None:
    """Delete a calendar nobody uses, with its days. The row is locked first, so a unit
    given this calendar meanwhile either is seen here (refused) or fails on its foreign
    key after the delete — never silently loses its calendar."""
    row: BusinessCalendar = _load(session, viewer, calendar_id, for_update=True)  # 404 first
    _require_admin(viewer)
    if row.is_default:
        raise Conflict(DEFAULT_NOT_DELETED, errors=[FieldError("calendar", DEFAULT_NOT_DELETED)])
    names = [u.name for u in assigned_units(session, row.id)]
    if names:
        units = "、".join(names) if i18n.get_locale() == "zh_CN" else ", ".join(names)
        raise Conflict(
            IN_USE_BY_UNITS,
            params={"units": units},
            errors=[FieldError("calendar", IN_USE_BY_UNITS, {"units": units})],
        )
    others = _other_references(session, row.id)
    if others:
        what = ", ".join(others)
        raise Conflict(
            IN_USE_BY_OTHERS,
            params={"what": what},
            errors=[FieldError("calendar", IN_USE_BY_OTHERS, {"what": what})],
        )
    changes = diff(_snapshot(row), {})
    changes.update(_override_changes(row.overrides, deleted=True))
    session.delete(row)  # its days go with it (cascade)
    session.flush()
    record(session, viewer, "calendar.delete", "calendar", calendar_id, changes)


def _manages(viewer: Viewer, unit_path: str) -> bool:
    return (
        viewer.has_role("manager")
        and viewer.unit_path is not None
        and unit_path.startswith(viewer.unit_path)
    )


def assign_calendar(
    session: Session, viewer: Viewer, unit_id: int, calendar_id: int | None
) -> Unit:
    """Give a unit its calendar (None: inherit again). Admins, or managers above the unit."""
    unit = get_visible(session, Unit, unit_id, viewer, for_update=True)  # out of scope: 404
    if not (viewer.is_admin or _manages(viewer, unit.path)):
        raise Forbidden(N_("Only administrators and the unit's managers may choose its calendar."))
    if calendar_id is not None:
        found = session.scalar(
            visible(select(BusinessCalendar.id), BusinessCalendar, viewer).where(
                BusinessCalendar.id == calendar_id
            )
        )
        if found is None:
            raise Invalid.field("calendar_id", N_("No such calendar."))
    before = unit.calendar_id
    if before != calendar_id:
        unit.calendar_id = calendar_id
        session.flush()
        record(
            session,
            viewer,
            "unit.calendar",
            "unit",
            unit.id,
            {"calendar_id": {"before": before, "after": calendar_id}},
        )
    return unit


def may_edit_overrides(session: Session, viewer: Viewer, row: BusinessCalendar) -> bool:
    if viewer.is_admin:
        return True
    if row.is_default or not viewer.has_role("manager") or viewer.unit_path is None:
        return False
    paths = list(session.scalars(select(Unit.path).where(Unit.calendar_id == row.id)))
    return bool(paths) and all(_manages(viewer, p) for p in paths)


def local_today(row: BusinessCalendar) -> date:
    return now().astimezone(policy.Calendar(timezone=row.timezone).zone).date()


def add_override(
    session: Session, viewer: Viewer, calendar_id: int, data: OverrideIn
) -> CalendarOverride:
    row: BusinessCalendar = _load(session, viewer, calendar_id, for_update=True)
    if not may_edit_overrides(session, viewer, row):
        raise Forbidden(EDIT_DAYS_REFUSED)
    today = local_today(row)
    low = today - timedelta(days=OVERRIDE_PAST_DAYS)
    high = today + timedelta(days=OVERRIDE_FUTURE_DAYS)
    if not low <= data.day <= high:
        raise Invalid.field(
            "day",
            N_("Choose a day between {low} and {high}."),
            low=low.isoformat(),
            high=high.isoformat(),
        )
    bad_hours = _check_day(data.hours, "hours")
    if bad_hours:
        raise Invalid(errors=bad_hours)
    if any(o.day == data.day for o in row.overrides):
        raise Conflict(
            N_("This calendar already has an override on that day; remove it first."),
            errors=[
                FieldError(
                    "day", N_("This calendar already has an override on that day; remove it first.")
                )
            ],
        )
    override = CalendarOverride(
        calendar_id=row.id, day=data.day, hours=policy.normalised(data.hours), note=data.note
    )
    session.add(override)
    row.touch()
    session.flush()
    record(
        session,
        viewer,
        "calendar.override_add",
        "calendar",
        row.id,
        {
            f"override:{data.day.isoformat()}": {
                "before": None,
                "after": {"hours": override.hours, "note": override.note},
            }
        },
    )
    return override


def remove_override(session: Session, viewer: Viewer, calendar_id: int, day: date) -> None:
    row: BusinessCalendar = _load(session, viewer, calendar_id, for_update=True)
    if not may_edit_overrides(session, viewer, row):
        raise Forbidden(EDIT_DAYS_REFUSED)
    found = next((o for o in row.overrides if o.day == day), None)
    if found is None:
        raise NotFound(params={"day": day.isoformat()})
    before = {"hours": found.hours, "note": found.note}
    row.overrides.remove(found)
    row.touch()
    session.flush()
    record(
        session,
        viewer,
        "calendar.override_remove",
        "calendar",
        row.id,
        {f"override:{day.isoformat()}": {"before": before, "after": None}},
    )


def unit_calendar(
    session: Session, viewer: Viewer, unit_id: int
) -> tuple[Unit, BusinessCalendar | None, int | None]:
    """(the unit, the calendar it works by, the unit whose assignment that is — None for
    the default calendar)."""
    unit = get_visible(session, Unit, unit_id, viewer)
    ids = [*tree.ancestor_ids(unit.path), unit.id]
    source = session.scalar(
        select(Unit.id)
        .where(Unit.id.in_(ids), Unit.calendar_id.is_not(None))
        .order_by(Unit.depth.desc())
        .limit(1)
    )
    return unit, calendar_row_for_unit(session, unit.id), source


# --- the month view and the holiday-data warning -----------------------------------------


@dataclass
class Day:
    day: date
    working: bool
    hours: list[list[str]]
    reason: str
    holiday: str | None
    note: str


def _fmt(t: time, end: bool = False) -> str:
    return "24:00" if end and t == time(0) else t.strftime("%H:%M")


def month(row: BusinessCalendar, year: int, month_no: int) -> list[Day]:
    """Each day of a month: working or not, its hours, and why."""
    cal = compile_calendar(row)
    provider = holidays.provider_for(row.country)
    notes = {o.day: o.note for o in row.overrides}
    chinese = i18n.get_locale() == "zh_CN"
    out = []
    for n in range(1, monthly.monthrange(year, month_no)[1] + 1):
        d = date(year, month_no, n)
        hours, reason = policy.explain_day(cal, d, provider)
        name = None if row.always_open else holidays.holiday_name(row.country, d, chinese)
        if reason == policy.WEEKEND and name:
            reason = policy.HOLIDAY
        out.append(
            Day(
                d,
                bool(hours),
                [[_fmt(a), _fmt(b, end=True)] for a, b in hours],
                reason,
                name if reason in (policy.HOLIDAY, policy.MAKEUP) else None,
                notes.get(d, ""),
            )
        )
    return out


def missing_years(row: BusinessCalendar, today: date | None = None) -> list[int]:
    """Years in use that the holiday provider does not cover: this year, and the next one
    within WARN_DAYS of this year's end. Meanwhile those years follow the weekly hours and
    the overrides alone (weekends closed, statutory holidays worked)."""
    if row.always_open:
        return []
    today = today or local_today(row)
    years = [today.year]
    if (date(today.year, 12, 31) - today).days < WARN_DAYS:
        years.append(today.year + 1)
    provider = holidays.provider_for(row.country)
    return [y for y in years if not holidays.covers(provider, y)]


@dataclass
class HolidayWarning:
    calendar_id: int
    name: str
    country: str
    years: list[int]


def holiday_warnings(session: Session) -> list[HolidayWarning]:
    """Calendars in use (the default one and every one assigned to an active unit) whose
    holiday data lacks a year in use."""
    in_use = select(Unit.calendar_id).where(Unit.calendar_id.is_not(None), Unit.is_active.is_(True))
    rows = session.scalars(
        select(BusinessCalendar)
        .where(BusinessCalendar.is_default.is_(True) | BusinessCalendar.id.in_(in_use))
        .order_by(BusinessCalendar.id)
    )
    out = []
    for row in rows:
        years = missing_years(row)
        if years:
            out.append(HolidayWarning(row.id, row.name, row.country, years))
    return out


def visible_ids(session: Session, viewer: Viewer) -> list[int]:
    return list(session.scalars(visible(select(BusinessCalendar.id), BusinessCalendar, viewer)))
