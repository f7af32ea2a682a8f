"""Charts drawn on the server as inline SVG: no JavaScript, no library, legible offline.

A chart is plain markup with an accessible name (<title>) and description (<desc>); each
bar carries its own <title>, which browsers show on hover and screen readers can reach.
Numbers and month names arrive formatted (per locale) from the caller's functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache

from babel.dates import format_skeleton
from babel.numbers import format_compact_decimal
from markupsafe import Markup, escape

from kefu import i18n
from kefu.i18n import N_


@dataclass(frozen=True)
class Bar:
    label: str  # the full label, e.g. "2026年3月" (bar tooltips, the data table)
    value: Decimal
    text: str  # the value as shown, e.g. "¥12,345.00"
    tick: str = ""  # the label under the axis ('' for none)
    group: str = ""  # a second line under the axis at the start of a group, e.g. a year
    partial: bool = False  # e.g. the current month, still running


def nice_step(span: float, steps: int = 4) -> float:
    """A round step (1, 2, 2.5 or 5 × 10ⁿ) that splits `span` into about `steps` parts."""
    if span <= 0:
        return 1.0
    raw = span / steps
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * power >= raw:
            return m * power
    return 10 * power  # pragma: no cover (the loop always returns)


def ticks(maximum: float, steps: int = 4) -> list[float]:
    """Gridline values from 0 to a round top at or above `maximum`."""
    step = nice_step(maximum, steps)
    top = math.ceil(maximum / step) * step if maximum > 0 else step
    n = round(top / step)
    return [i * step for i in range(n + 1)]


def compact(value: float) -> str:
    """An axis number, short and in the reader's locale: 1.5M, 150万."""
    return format_compact_decimal(value, locale=i18n.get_locale(), fraction_digits=1)


@lru_cache(maxsize=4096)
def _skeleton(skeleton: str, value: date, locale: str) -> str:
    return format_skeleton(skeleton, value, locale=locale)  # slow-ish: it matches patterns


def month_label(month: date) -> str:
    """'2026年3月' / 'Mar 2026'."""
    return _skeleton("yMMM", month, i18n.get_locale())


def month_tick(month: date) -> str:
    """'3月' / 'Mar'."""
    return _skeleton("MMM", month, i18n.get_locale())


def year_label(month: date) -> str:
    """'2026年' / '2026'."""
    return _skeleton("y", month, i18n.get_locale())


def _n(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def bar_chart(
    bars: Sequence[Bar],
    *,
    chart_id: str,
    title: str,
    desc: str,
    axis: Callable[[float], str] = compact,
    width: int = 760,
    height: int = 230,
) -> Markup:
    """A vertical bar chart with a value axis, gridlines and labelled bars."""
    left, right, top, bottom = 52, 8, 12, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    maximum = max((float(b.value) for b in bars), default=0.0)
    grid = ticks(maximum)
    scale_top = grid[-1]
    slot = plot_w / max(len(bars), 1)
    bar_w = max(slot * 0.72, 1.0)
    base_y = top + plot_h
    tid, did = f"{chart_id}-title", f"{chart_id}-desc"
    out = [
        f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="{tid} {did}" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{tid}">{escape(title)}</title>',
        f'<desc id="{did}">{escape(desc)}</desc>',
        '<g class="chart-grid" aria-hidden="true">',
    ]
    for value in grid:
        y = base_y - (value / scale_top) * plot_h
        cls = ' class="chart-base"' if value == 0 else ""
        out.append(f'<line{cls} x1="{left}" x2="{width - right}" y1="{_n(y)}" y2="{_n(y)}"/>')
        out.append(
            f'<text class="chart-y" x="{left - 6}" y="{_n(y)}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(axis(value))}</text>'
        )
    out.append("</g>")
    out.append('<g class="chart-bars">')
    for i, b in enumerate(bars):
        x = left + i * slot + (slot - bar_w) / 2
        h = (float(b.value) / scale_top) * plot_h if scale_top else 0.0
        if b.value > 0:
            h = max(h, 1.0)  # a small month is still visible
        cls = "chart-bar is-partial" if b.partial else "chart-bar"
        out.append(
            f'<rect class="{cls}" x="{_n(x)}" y="{_n(base_y - h)}" width="{_n(bar_w)}" '
            f'height="{_n(h)}"><title>{escape(b.label)}: {escape(b.text)}</title></rect>'
        )
    out.append("</g>")
    out.append('<g class="chart-x" aria-hidden="true">')
    for i, b in enumerate(bars):
        cx = left + i * slot + slot / 2
        if b.tick:
            out.append(
                f'<line class="chart-tick" x1="{_n(cx)}" x2="{_n(cx)}" y1="{base_y}" '
                f'y2="{base_y + 4}"/>'
                f'<text x="{_n(cx)}" y="{base_y + 15}" text-anchor="middle">{escape(b.tick)}</text>'
            )
        if b.group:
            gx = left + i * slot
            out.append(
                f'<text class="chart-group" x="{_n(gx)}" y="{base_y + 31}">{escape(b.group)}</text>'
            )
    out.append("</g></svg>")
    return Markup("".join(out))


# --- figures in tables and text, per locale ---------------------------------------------------


def money(value: Decimal | float | int | None, currency: str = "CNY") -> str:
    """'¥1,234.50' / 'CN¥1,234.50' ('' for none)."""
    if value is None:
        return ""
    return i18n.format_money(Decimal(str(value)), currency)


def num(value: Decimal | float | int | None) -> str:
    if value is None:
        return ""
    return i18n.format_number(value)


def day(value: date | None) -> str:
    """A calendar date (not an instant, so no time zone): '2026年3月5日' / 'Mar 5, 2026'."""
    if value is None:
        return ""
    return _skeleton("yMMMd", value, i18n.get_locale())


def percent(share: Decimal | float, total: Decimal | float | int = 1) -> str:
    """share / total as a percentage with at most one decimal: '70', '12.5'."""
    if not total:
        return "0"
    value = Decimal(str(share)) * 100 / Decimal(str(total))
    return i18n.format_number(value.quantize(Decimal("0.1")))


def duration(minutes: int | None) -> str:
    """'1 h 30 min' / '1 小时 30 分钟'."""
    if minutes is None:
        return ""
    h, m = divmod(int(minutes), 60)
    if h and m:
        return i18n.gettext(N_("{h} h {m} min"), h=h, m=m)
    if h:
        return i18n.gettext(N_("{h} h"), h=h)
    return i18n.gettext(N_("{m} min"), m=m)


TEMPLATE_HELPERS = {
    "money": money,
    "num": num,
    "day": day,
    "percent": percent,
    "duration": duration,
}
