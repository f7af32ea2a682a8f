"""Business-time arithmetic: pure functions of (calendar, provider, start, pauses).

A calendar has a time zone, working hours per weekday (Monday = 0) and overrides per date.
A day is a working day when the unit's override says so, else when the provider says so —
a make-up working day (调休, e.g. a Saturday) works with Monday's hours, a statutory holiday
on a weekday does not; a plain weekend (no holiday) works where the calendar gives that
weekday hours; in a year the provider does not cover, the weekly hours alone apply.
A 7×24 calendar counts calendar time.

A due time is the earliest instant at which the business time elapsed since the start
reaches the target, so a target that runs out at the end of a working interval is due at
that end, not at the next start. Pauses (a ticket pending on the customer) stop the clock.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from kefu.i18n import N_
from kefu.sla.holidays import Provider, statutory_off

Interval = tuple[time, time]
DEFAULT_HOURS: tuple[Interval, ...] = ((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30)))
MAX_DAYS = 3 * 366  # a target that cannot be met within three years is a broken calendar


@dataclass(frozen=True)
class Calendar:
    timezone: str = "Asia/Shanghai"
    # weekday → working intervals; weekdays absent or empty do not work by default.
    hours: Mapping[int, tuple[Interval, ...]] = field(
        default_factory=lambda: {d: DEFAULT_HOURS for d in range(5)}
    )
    # date → intervals (an extra open day) or () (an extra closed day); wins over the provider.
    overrides: Mapping[date, tuple[Interval, ...]] = field(default_factory=dict)
    always_open: bool = False  # 7×24

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def years(self) -> dict[tuple[Provider, int], _Year]:
        """Working-time timelines per (provider, year), built on demand and kept on the
        instance: a calendar is immutable, and sla.service caches compiled calendars per
        calendar version, so each year is computed once per process."""
        return {}


class NoWorkingTime(ValueError):
    """The calendar has no working time ahead (e.g. every day closed)."""


def day_hours(cal: Calendar, day: date, provider: Provider) -> tuple[Interval, ...]:
    """The working intervals of a local date."""
    if day in cal.overrides:
        return cal.overrides[day]
    official = provider(day)
    weekday_hours = tuple(cal.hours.get(day.weekday(), ()))
    if official is None:  # not covered: the weekly pattern alone
        return weekday_hours
    if not official:
        # A plain weekend still works where the calendar gives it hours; a holiday does not.
        if weekday_hours and day.weekday() >= 5 and not statutory_off(provider, day):
            return weekday_hours
        return ()
    if weekday_hours:
        return weekday_hours
    return tuple(cal.hours.get(0, ()))  # a make-up working day works with Monday's hours


def _windows(
    cal: Calendar, start: datetime, provider: Provider
) -> Iterator[tuple[datetime, datetime]]:
    """Working windows (UTC) from `start` onwards, in order."""
    if cal.always_open:
        yield start, start + timedelta(days=MAX_DAYS)
        return
    zone = cal.zone
    local_day = start.astimezone(zone).date()
    for offset in range(MAX_DAYS):
        day = local_day + timedelta(days=offset)
        for begin, end in day_hours(cal, day, provider):
            a = datetime.combine(day, begin, zone).astimezone(UTC)
            b = (
                datetime.combine(day, end, zone).astimezone(UTC)
                if end != time(0)
                else datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
            )
            if b <= start:
                continue
            yield max(a, start), b


def _minus_pauses(
    windows: Iterable[tuple[datetime, datetime]], pauses: list[tuple[datetime, datetime | None]]
) -> Iterator[tuple[datetime, datetime]]:
    """Windows with the paused stretches cut out (an open pause runs for ever)."""
    far = datetime.max.replace(tzinfo=UTC)
    cuts = sorted((p0, p1 or far) for p0, p1 in pauses)
    for a, b in windows:
        pieces = [(a, b)]
        for p0, p1 in cuts:
            nxt = []
            for x, y in pieces:
                if p1 <= x or p0 >= y:
                    nxt.append((x, y))
                    continue
                if x < p0:
                    nxt.append((x, p0))
                if p1 < y:
                    nxt.append((p1, y))
            pieces = nxt
        yield from pieces


# --- the fast path: per-year timelines with prefix sums, searched by bisection --------------


@dataclass(frozen=True)
class _Year:
    starts: tuple[float, ...]  # epoch seconds of each working interval, in order
    ends: tuple[float, ...]
    before: tuple[float, ...]  # business seconds of the year before interval i
    after: tuple[float, ...]  # … up to the end of interval i
    total: float


def _year(cal: Calendar, provider: Provider, year: int) -> _Year:
    """Every working interval of one local year."""
    zone = cal.zone
    starts: list[float] = []
    ends: list[float] = []
    before: list[float] = []
    after: list[float] = []
    acc = 0.0
    day = date(year, 1, 1)
    while day.year == year:
        for begin, end in day_hours(cal, day, provider):
            a = datetime.combine(day, begin, zone).timestamp()
            stop = (
                datetime.combine(day, end, zone)
                if end != time(0)
                else datetime.combine(day + timedelta(days=1), time(0), zone)
            )
            b = stop.timestamp()
            if b > a:
                starts.append(a)
                ends.append(b)
                before.append(acc)
                acc += b - a
                after.append(acc)
        day += timedelta(days=1)
    return _Year(tuple(starts), tuple(ends), tuple(before), tuple(after), acc)


def _timeline(cal: Calendar, provider: Provider, year: int) -> _Year:
    found = cal.years.get((provider, year))
    if found is None:
        found = cal.years[(provider, year)] = _year(cal, provider, year)
    return found


def _position(y: _Year, t: float) -> float:
    """Business seconds of the year before instant t."""
    i = bisect_right(y.ends, t)
    if i >= len(y.starts):
        return y.total
    return y.before[i] + max(0.0, t - y.starts[i])


def _local_year(cal: Calendar, t: float) -> int:
    return datetime.fromtimestamp(t, cal.zone).year


def _fast_due(cal: Calendar, t: float, seconds: float, provider: Provider) -> float:
    year = _local_year(cal, t)
    for offset in range(4):
        y = _timeline(cal, provider, year + offset)
        target = (_position(y, t) if offset == 0 else 0.0) + seconds
        if target <= y.total and y.starts:
            j = bisect_left(y.after, target)
            return y.starts[j] + (target - y.before[j])
        seconds = target - y.total
    raise NoWorkingTime("no working time within three years")


def _fast_between(cal: Calendar, t0: float, t1: float, provider: Provider) -> float:
    y0, y1 = _local_year(cal, t0), _local_year(cal, t1)
    total = 0.0
    for year in range(y0, y1 + 1):
        y = _timeline(cal, provider, year)
        a = _position(y, t0) if year == y0 else 0.0
        b = _position(y, t1) if year == y1 else y.total
        total += b - a
    return total


def due_at(
    cal: Calendar,
    start: datetime,
    minutes: float,
    provider: Provider,
    pauses: list[tuple[datetime, datetime | None]] | None = None,
) -> datetime:
    """The instant `minutes` of business time after `start` (aware; result in UTC)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    start = start.astimezone(UTC)
    left = timedelta(minutes=minutes)
    if left <= timedelta(0):
        return start
    if not pauses:  # the common case: bisection over cached timelines
        if cal.always_open:
            return start + left
        t = _fast_due(cal, start.timestamp(), left.total_seconds(), provider)
        return datetime.fromtimestamp(t, UTC)
    for a, b in _minus_pauses(_windows(cal, start, provider), pauses or []):
        span = b - a
        if left <= span:
            return a + left
        left -= span
    raise NoWorkingTime("no working time within three years")


def business_minutes(
    cal: Calendar,
    start: datetime,
    end: datetime,
    provider: Provider,
    pauses: list[tuple[datetime, datetime | None]] | None = None,
) -> float:
    """Business minutes between two instants (0 when end is not after start)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return 0.0
    if not pauses:
        if cal.always_open:
            return (end - start).total_seconds() / 60
        return _fast_between(cal, start.timestamp(), end.timestamp(), provider) / 60
    total = timedelta(0)
    for a, b in _minus_pauses(_windows(cal, start, provider), pauses or []):
        if a >= end:
            break
        total += min(b, end) - a
    return total.total_seconds() / 60


# --- explaining a day, and checking hours ---------------------------------------------------

# Why a day works or not (the month view of the admin pages).
OVERRIDE_OPEN, OVERRIDE_CLOSED = "override_open", "override_closed"
HOLIDAY, MAKEUP = "holiday", "makeup"
WEEKDAY, WEEKEND = "weekday", "weekend"
UNCOVERED = "uncovered"  # the provider has no data for the year: the weekly pattern alone
ALWAYS = "always_open"


def explain_day(cal: Calendar, day: date, provider: Provider) -> tuple[tuple[Interval, ...], str]:
    """(working intervals, why) of a local date; the same decision as day_hours(). A
    weekend that the provider closes is WEEKEND here; the caller may name its holiday."""
    if cal.always_open:
        return ((time(0), time(0)),), ALWAYS
    hours = day_hours(cal, day, provider)
    if day in cal.overrides:
        return hours, OVERRIDE_OPEN if hours else OVERRIDE_CLOSED
    official = provider(day)
    if official is None:
        return hours, UNCOVERED
    weekend = day.weekday() >= 5
    if not official:
        if hours:  # a plain weekend the calendar works
            return hours, WEEKDAY
        return hours, WEEKEND if weekend else HOLIDAY
    return hours, MAKEUP if weekend else WEEKDAY


def parse_time(value: str, *, end: bool = False) -> time | None:
    """'HH:MM' → time; '24:00' as an end is midnight (time(0)). None when malformed."""
    if end and value == "24:00":
        return time(0)
    if len(value) != 5 or value[2] != ":":
        return None
    try:
        return time.fromisoformat(value)
    except ValueError:
        return None


def check_intervals(pairs: list[list[str]]) -> list[tuple[int, str]]:
    """Problems of one day's intervals: (index of the interval, msgid). Each must be two
    well-formed times with the end after the start; together they must not overlap (in
    whatever order they are given)."""
    problems: list[tuple[int, str]] = []
    spans: list[tuple[int, int, int]] = []  # (start, stop, index) in minutes of the day
    for i, pair in enumerate(pairs):
        if len(pair) != 2:
            problems.append((i, N_("Give a start and an end.")))
            continue
        a, b = parse_time(pair[0]), parse_time(pair[1], end=True)
        if a is None or b is None:
            problems.append((i, N_("Must be a time (HH:MM).")))
            continue
        start = a.hour * 60 + a.minute
        stop = 24 * 60 if b == time(0) else b.hour * 60 + b.minute
        if stop <= start:
            problems.append((i, N_("The end must come after the start.")))
            continue
        spans.append((start, stop, i))
    reach = -1  # the latest end so far, in order of start
    for start, stop, i in sorted(spans):
        if start < reach:
            problems.append((i, N_("These hours overlap other hours of the same day.")))
        reach = max(reach, stop)
    return sorted(problems)


def normalised(pairs: list[list[str]]) -> list[list[str]]:
    """Checked intervals in order, with an end of 24:00 stored as 00:00 (midnight)."""
    out = [[a, "00:00" if b == "24:00" else b] for a, b in pairs]
    return sorted(out)
