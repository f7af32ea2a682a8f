"""Scheduled re-tiering: when the last applied run is older than the interval, run and apply.

Several workers may try at once; on PostgreSQL one takes an advisory lock for the
transaction and the others skip, on SQLite the write lock serialises them (and the second
then finds a fresh run).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from kefu.clock import now
from kefu.config import get_settings
from kefu.db import is_postgres
from kefu.scope import Viewer
from kefu.tiering import service as tiering

WORKER = Viewer(
    staff_id=None,
    username="worker",
    unit_id=None,
    unit_path=None,
    roles=frozenset({"admin"}),
    channel="worker",
)


def run(session: Session) -> dict[str, object]:
    days = get_settings().retier_interval_days
    if days <= 0:
        return {"skipped": "disabled"}
    if is_postgres(session) and not session.scalar(
        text("SELECT pg_try_advisory_xact_lock(hashtext('kefu.jobs.retier'))")
    ):
        return {"skipped": "another worker is on it"}
    last = tiering.last_applied(session)
    if last is not None and last.applied_at and now() - last.applied_at < timedelta(days=days):
        return {"skipped": "fresh", "last_run": last.id}
    result = tiering.start_run(session, WORKER)
    tiering.apply_run(session, WORKER, result.id)
    return {"applied_run": result.id, "tiers": result.summary["tiers"]}
