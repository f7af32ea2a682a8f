"""Pure rules of return visits: attempts, the next periodic visit. No database, no clock."""

from __future__ import annotations

from datetime import datetime, timedelta

DEFAULT_VISIT_HOURS = 72  # when a ticket has no service level version to say
FIRST_PERIODIC_WITHIN_DAYS = 28


def after_unreached(attempts: int, max_attempts: int) -> str:
    """The state after another unreached attempt (attempts counts it already)."""
    return "failed" if attempts >= max_attempts else "scheduled"


def next_periodic_due(
    customer_id: int, frequency_days: int, last_due: datetime | None, at: datetime
) -> datetime:
    """The next periodic visit of a key account: `frequency_days` after the last one, never
    in the past; a customer's first is spread over the coming weeks (by id) so that a new
    ruleset does not put every key account on the same day."""
    if last_due is not None:
        return max(last_due + timedelta(days=frequency_days), at + timedelta(days=1))
    spread = customer_id % min(frequency_days, FIRST_PERIODIC_WITHIN_DAYS)
    return at + timedelta(days=1 + spread)
