"""Return visits in the worker: plan the periodic visits of key accounts, escalate overdue
visits. Both are safe with several workers (unique dedupe keys, SKIP LOCKED claims)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from kefu.visits import service as visits


def run(session: Session) -> dict[str, object]:
    return {
        "periodic_planned": visits.schedule_periodic(session),
        "overdue": visits.sweep_overdue(session),
    }
