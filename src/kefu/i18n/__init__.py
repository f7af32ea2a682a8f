"""Translation catalogue (Babel .po files: zh_CN default, en second) and locale formatting.

Message ids are English. `N_()` marks a message for the catalogue without translating it
(domain errors carry msgids; the edge translates them in the caller's language).
"""

from __future__ import annotations

import io
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as _format_date
from babel.dates import format_datetime as _format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import Translations

LOCALES: tuple[str, ...] = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
LOCALE_DIR = Path(__file__).parent / "locales"

_current: ContextVar[str] = ContextVar("kefu_locale", default=DEFAULT_LOCALE)


def N_(message: str) -> str:
    return message


@lru_cache(maxsize=len(LOCALES))
def translations(locale: str) -> Translations:
    """The catalogue of `locale`, compiled in memory from its .po file."""
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return Translations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf)


def normalize(locale: str | None) -> str | None:
    """Map 'zh', 'zh-CN', 'zh_Hans_CN', 'en-US' … onto a supported locale, else None."""
    if not locale:
        return None
    tag = locale.strip().replace("-", "_")
    try:
        parsed = Locale.parse(tag)
    except (ValueError, UnknownLocaleError):
        return None
    if parsed.language == "zh":
        return "zh_CN"
    if parsed.language == "en":
        return "en"
    return None


def from_accept_language(header: str | None) -> str | None:
    """The best supported locale of an Accept-Language header."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        piece, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        loc = normalize(piece)
        if loc and q > 0:
            ranked.append((-q, i, loc))
    return sorted(ranked)[0][2] if ranked else None


class Localized:
    """A text given in each language by a person (e.g. an admin-defined field label), shown
    in the language current when it is formatted: a domain error can carry it as a
    placeholder value and the edge renders it in the caller's language."""

    __slots__ = ("en", "zh_CN")

    def __init__(self, zh_CN: str, en: str) -> None:
        self.zh_CN = zh_CN
        self.en = en

    def __str__(self) -> str:
        return self.en if get_locale() == "en" else self.zh_CN

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __repr__(self) -> str:
        return f"Localized({self.zh_CN!r}, {self.en!r})"


def set_locale(locale: str) -> None:
    _current.set(locale if locale in LOCALES else DEFAULT_LOCALE)


def get_locale() -> str:
    return _current.get()


def gettext(message: str, **params: Any) -> str:
    text = translations(get_locale()).gettext(message)
    return text.format(**params) if params else text


def ngettext(singular: str, plural: str, n: int, **params: Any) -> str:
    text = translations(get_locale()).ngettext(singular, plural, n)
    return text.format(n=n, **params)


_ = gettext


def format_datetime(value: datetime | None, tz: str = "Asia/Shanghai", fmt: str = "medium") -> str:
    if value is None:
        return ""
    return _format_datetime(value.astimezone(ZoneInfo(tz)), fmt, locale=get_locale())


def format_date(value: datetime | date | None, tz: str = "Asia/Shanghai") -> str:
    """A date per locale; an instant is shown on its day in `tz`."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(ZoneInfo(tz)).date()
    return _format_date(value, "medium", locale=get_locale())


def format_number(value: int | float | Decimal) -> str:
    return format_decimal(value, locale=get_locale())


def format_money(value: Decimal, currency: str = "CNY") -> str:
    return format_currency(value, currency, locale=get_locale())
