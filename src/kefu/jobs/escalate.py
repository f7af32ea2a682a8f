"""The SLA escalation sweep (kefu.tickets.escalation): warn, breach, parent unit.

Each run is one transaction. Several workers may run it at once: on PostgreSQL each claims
the tickets it escalates with FOR UPDATE SKIP LOCKED, and the unique escalation step makes
every step happen once whoever takes it; on SQLite the write lock serialises them.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from kefu.config import get_settings
from kefu.tickets import escalation


def run(session: Session) -> dict[str, int]:
    minutes = get_settings().escalate_parent_after_minutes
    return escalation.sweep(session, parent_after=timedelta(minutes=minutes))
