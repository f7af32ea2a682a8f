"""Warn when the holiday data lacks a year in use (kefu.sla.service.holiday_warnings).

`chinese-calendar` knows only the years it ships; meanwhile such a year follows the weekly
hours and overrides alone. The worker logs the warning once a day per process (the
admin pages show it all along); it only reads.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from kefu.clock import now
from kefu.sla import service as calendars

log = logging.getLogger("kefu.worker")
_last: tuple[str, str] | None = None  # (day, what was logged): once a day, not every run


def run(session: Session) -> dict[str, object]:
    global _last
    warnings = calendars.holiday_warnings(session)
    if not warnings:
        return {"missing": []}
    text = "; ".join(
        f"calendar {w.calendar_id} ({w.name}, {w.country}): {', '.join(map(str, w.years))}"
        for w in warnings
    )
    today = now().date().isoformat()
    if _last != (today, text):
        log.warning(
            "holiday data needs an update: %s — those years follow the weekly hours and "
            "overrides alone until the holiday package is upgraded",
            text,
        )
        _last = (today, text)
    return {"missing": [{"calendar_id": w.calendar_id, "years": w.years} for w in warnings]}
