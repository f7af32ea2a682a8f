"""Business-time arithmetic, by tables of cases (DESIGN.md: SLA)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from kefu.sla import holidays
from kefu.sla.policy import Calendar, NoWorkingTime, business_minutes, day_hours, due_at

SH = ZoneInfo("Asia/Shanghai")
CN = holidays.china
NINE_TO_FIVE = {d: ((time(9), time(17)),) for d in range(5)}
SPLIT = {d: ((time(9), time(12)), (time(13), time(17))) for d in range(5)}


def sh(y, mo, d, h=0, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=SH)


@pytest.mark.parametrize(
    ("start", "minutes", "expected", "why"),
    [
        (sh(2026, 11, 24, 10), 60, sh(2026, 11, 24, 11), "inside one working day"),
        (sh(2026, 11, 24, 16), 60, sh(2026, 11, 24, 17), "runs out at the end: due at that end"),
        (sh(2026, 11, 24, 16), 61, sh(2026, 11, 25, 9, 1), "one minute past the end: next day"),
        (sh(2026, 11, 24, 7), 30, sh(2026, 11, 24, 9, 30), "before opening: counts from 9:00"),
        (sh(2026, 11, 24, 20), 30, sh(2026, 11, 25, 9, 30), "after closing: next morning"),
        (sh(2026, 11, 27, 16), 120, sh(2026, 11, 30, 10), "Friday evening into Monday"),
        (sh(2026, 11, 28, 10), 60, sh(2026, 11, 30, 10), "a Saturday does not work"),
        (sh(2026, 9, 30, 16), 120, sh(2026, 10, 8, 10), "National Day: 1–7 October closed"),
        (sh(2026, 10, 9, 16), 120, sh(2026, 10, 10, 10), "10 Oct 2026 is a make-up Saturday"),
        (sh(2026, 2, 13, 16), 120, sh(2026, 2, 14, 10), "14 Feb 2026 is a make-up Saturday"),
        (sh(2026, 11, 24, 10), 0, sh(2026, 11, 24, 10), "a zero target is due at once"),
        (sh(2026, 11, 24, 10), 8 * 60 * 5, sh(2026, 12, 1, 10), "a week of business time"),
    ],
)
def test_due_at_on_china_calendar(start, minutes, expected, why):
    cal = Calendar(hours=NINE_TO_FIVE)
    assert due_at(cal, start, minutes, CN) == expected.astimezone(UTC), why


def test_split_day_skips_lunch():
    cal = Calendar(hours=SPLIT)
    assert due_at(cal, sh(2026, 11, 24, 11), 90, CN) == sh(2026, 11, 24, 13, 30).astimezone(UTC)
    assert due_at(cal, sh(2026, 11, 24, 11), 60, CN) == sh(2026, 11, 24, 12).astimezone(UTC)


def test_make_up_day_uses_mondays_hours():
    cal = Calendar(
        hours={0: ((time(8), time(12)),), **{d: ((time(9), time(17)),) for d in range(1, 5)}}
    )
    assert day_hours(cal, date(2026, 10, 10), CN) == ((time(8), time(12)),)
    assert day_hours(cal, date(2026, 10, 1), CN) == ()  # a weekday holiday


def test_unit_overrides_win_over_the_provider():
    extra_closed = date(2026, 11, 25)
    extra_open = date(2026, 11, 28)  # a Saturday the unit works
    cal = Calendar(
        hours=NINE_TO_FIVE, overrides={extra_closed: (), extra_open: ((time(10), time(14)),)}
    )
    assert due_at(cal, sh(2026, 11, 24, 16), 120, CN) == sh(2026, 11, 26, 10).astimezone(UTC)
    assert due_at(cal, sh(2026, 11, 27, 16), 120, CN) == sh(2026, 11, 28, 11).astimezone(UTC)


def test_uncovered_year_falls_back_to_weekdays():
    # chinese-calendar has no 2027 data: weekends and overrides still apply.
    assert holidays.covers(CN, 2026) and not holidays.covers(CN, 2027)
    cal = Calendar(hours=NINE_TO_FIVE)
    assert due_at(cal, sh(2027, 1, 1, 16), 120, CN) == sh(2027, 1, 4, 10).astimezone(UTC)


def test_seven_by_twenty_four_counts_calendar_time():
    cal = Calendar(always_open=True)
    assert due_at(cal, sh(2026, 10, 1, 23), 120, CN) == sh(2026, 10, 2, 1).astimezone(UTC)


def test_pauses_stop_the_clock():
    cal = Calendar(hours=NINE_TO_FIVE)
    start = sh(2026, 11, 24, 9)
    pause = (sh(2026, 11, 24, 10).astimezone(UTC), sh(2026, 11, 24, 15).astimezone(UTC))
    assert due_at(cal, start, 180, CN, [pause]) == sh(2026, 11, 24, 17).astimezone(UTC)
    open_pause = (sh(2026, 11, 24, 10).astimezone(UTC), None)
    with pytest.raises(NoWorkingTime):
        due_at(cal, start, 180, CN, [open_pause])
    assert business_minutes(cal, start, sh(2026, 11, 25, 10), CN, [pause]) == 60 + 120 + 60


def test_other_countries_use_holidays_package():
    us = holidays.provider_for("US")
    cal = Calendar(timezone="America/New_York", hours=NINE_TO_FIVE)
    ny = ZoneInfo("America/New_York")
    start = datetime(2026, 7, 3, 16, tzinfo=ny)  # Friday 3 July: observed Independence Day
    assert us(date(2026, 7, 3)) is False
    assert due_at(cal, start, 60, us) == datetime(2026, 7, 6, 10, tzinfo=ny).astimezone(UTC)


def test_business_minutes_matches_due_at():
    cal = Calendar(hours=SPLIT)
    start = sh(2026, 9, 29, 10, 17)
    for minutes in (1, 59, 103, 480, 1000, 4321):
        due = due_at(cal, start, minutes, CN)
        assert business_minutes(cal, start, due, CN) == pytest.approx(minutes)


def test_closed_calendar_refuses():
    with pytest.raises(NoWorkingTime):
        due_at(Calendar(hours={}), sh(2027, 3, 1, 9), 60, CN)


def test_fast_path_agrees_with_the_reference_walk():
    """Bisection over cached year timelines must give exactly what walking the windows
    gives (a pause in the distant past forces the walk)."""
    import random

    far_past = [(datetime(2000, 1, 1, tzinfo=UTC), datetime(2000, 1, 1, 0, 1, tzinfo=UTC))]
    rng = random.Random(7)
    cal = Calendar(
        hours=SPLIT, overrides={date(2026, 12, 24): (), date(2026, 12, 27): ((time(10), time(14)),)}
    )
    for _ in range(300):
        start = sh(
            2026, rng.randrange(1, 13), rng.randrange(1, 29), rng.randrange(24), rng.randrange(60)
        )
        minutes = rng.choice([1, 30, 61, 240, 960, 4800, 20000, 60000])
        fast = due_at(cal, start, minutes, CN)
        assert fast == due_at(cal, start, minutes, CN, far_past), (start, minutes)
        end = start + (fast - start) * rng.random()
        assert business_minutes(cal, start, end, CN) == pytest.approx(
            business_minutes(cal, start, end, CN, far_past), abs=1e-6
        )


SATURDAYS = {**SPLIT, 5: ((time(9), time(12)),)}


@pytest.mark.parametrize(
    ("day", "expected", "why"),
    [
        (date(2026, 11, 28), ((time(9), time(12)),), "a plain Saturday works its own hours"),
        (date(2026, 11, 29), (), "Sunday has no hours"),
        (date(2026, 10, 3), (), "a Saturday inside the National Day holiday does not work"),
        (date(2026, 10, 10), ((time(9), time(12)),), "a make-up Saturday: its own hours"),
        (date(2026, 10, 1), (), "a statutory holiday on a weekday"),
        (date(2027, 1, 2), ((time(9), time(12)),), "a year without data: the weekly hours"),
    ],
)
def test_weekend_hours_on_china_calendar(day, expected, why):
    assert day_hours(Calendar(hours=SATURDAYS), day, CN) == expected, why


def test_weekend_hours_elsewhere_skip_holidays():
    us = holidays.provider_for("US")
    cal = Calendar(timezone="America/New_York", hours=SATURDAYS)
    assert day_hours(cal, date(2026, 7, 11), us) == ((time(9), time(12)),)  # plain Saturday
    assert day_hours(cal, date(2026, 7, 4), us) == ()  # Independence Day, a Saturday
    # A provider that cannot tell holidays from weekends keeps weekends closed.
    assert day_hours(cal, date(2026, 7, 11), lambda d: d.weekday() < 5) == ()
