"""Pure rules of tickets: the state machine and load weights."""

from __future__ import annotations

from datetime import datetime, timedelta

TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"open", "pending", "on_hold", "resolved"}),
    "open": frozenset({"pending", "on_hold", "resolved"}),
    "pending": frozenset({"open", "on_hold", "resolved"}),
    "on_hold": frozenset({"open", "pending", "resolved"}),
    "resolved": frozenset({"closed", "open"}),  # back to open = reopen, within the window
    "closed": frozenset(),
}
OPEN_STATES = ("new", "open", "pending", "on_hold")
PRIORITY_WEIGHT = {"urgent": 4, "high": 3, "normal": 2, "low": 1}
REOPEN_DAYS = 7


def may_move(state: str, to: str) -> bool:
    return to in TRANSITIONS.get(state, frozenset())


def may_reopen(resolved_at: datetime | None, at: datetime, days: int = REOPEN_DAYS) -> bool:
    return resolved_at is not None and at - resolved_at <= timedelta(days=days)
