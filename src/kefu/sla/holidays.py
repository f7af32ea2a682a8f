"""Holiday providers: is a date a working day, by the official calendar of a country?

China uses `chinese-calendar`, which knows the statutory holidays AND the adjusted working
days (调休); other countries use `holidays`. A provider answers True (working day), False
(holiday or weekend) or None (the provider has no data for that year).

A provider also carries `statutory(day)`: whether a day off is a named holiday (or a rest
day in lieu) rather than a plain weekend — so a unit whose calendar has Saturday hours works
on a plain Saturday but not on one inside a holiday (see `statutory_off`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import lru_cache

Provider = Callable[[date], bool | None]


def china(day: date) -> bool | None:
    return _china(day)


@lru_cache(maxsize=4096)
def _china(day: date) -> bool | None:
    import chinese_calendar

    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:  # a year the package does not cover yet
        return None


@lru_cache(maxsize=4096)
def _china_statutory(day: date) -> bool:
    import chinese_calendar

    try:
        return chinese_calendar.get_holiday_detail(day)[1] is not None
    except NotImplementedError:
        return False


setattr(china, "statutory", _china_statutory)  # noqa: B010 (a function's attribute)


@lru_cache(maxsize=64)
def _country_holidays(country: str, year: int) -> frozenset[date]:
    import holidays

    return frozenset(holidays.country_holidays(country, years=year).keys())


def other_country(country: str) -> Provider:
    def provider(day: date) -> bool | None:
        if day.weekday() >= 5:
            return False
        return day not in _country_holidays(country, day.year)

    setattr(provider, "statutory", lambda day: day in _country_holidays(country, day.year))  # noqa: B010
    return provider


def statutory_off(provider: Provider, day: date) -> bool:
    """Whether a day the provider closes is a holiday (True) or a plain weekend (False).
    A provider that cannot tell counts every closed day as a holiday."""
    named = getattr(provider, "statutory", None)
    return True if named is None else bool(named(day))


@lru_cache(maxsize=32)
def provider_for(country: str) -> Provider:
    """The provider of a country; the same object each time, so caches keyed by it hit."""
    return china if country.upper() == "CN" else other_country(country.upper())


def covers(provider: Provider, year: int) -> bool:
    """Whether the provider knows `year` (admin pages warn when it does not)."""
    return provider(date(year, 1, 1)) is not None


@lru_cache(maxsize=1)
def countries() -> tuple[str, ...]:
    """ISO 3166 codes a calendar may name: China and every country of `holidays`."""
    import holidays

    return tuple(sorted({"CN", *holidays.list_supported_countries()}))


def known_country(country: str) -> bool:
    return country.upper() in countries()


def holiday_name(country: str, day: date, chinese: bool = True) -> str | None:
    """The name of the holiday a date belongs to (for China also the holiday a make-up
    working day is for), or None."""
    if country.upper() == "CN":
        import chinese_calendar

        try:
            _, name = chinese_calendar.get_holiday_detail(day)
        except NotImplementedError:
            return None
        if not name:
            return None
        if chinese:
            found = next((h for h in chinese_calendar.Holiday if h.value == name), None)
            return found.chinese if found is not None else name
        return str(name)
    found = _named_holidays(country.upper(), day.year).get(day)
    return found or None


@lru_cache(maxsize=64)
def _named_holidays(country: str, year: int) -> dict[date, str]:
    import holidays

    return {d: str(name) for d, name in holidays.country_holidays(country, years=year).items()}
