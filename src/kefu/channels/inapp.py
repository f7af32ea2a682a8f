"""In-app notices (the bell): written during fan-out, in the same transaction, so they need
no retries; one per (staff member, event)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kefu.channels.base import Context, Job, Planned, PlannedEvent
from kefu.channels.models import Notice
from kefu.channels.topics import QUIET, TOPICS
from kefu.clock import now
from kefu.db import is_postgres

_notices = cast(Table, Notice.__table__)


class InAppChannel:
    name = "inapp"
    audiences = frozenset({"staff"})
    # Every known event type but the quiet ones, unless a person chooses otherwise.
    default_topics: frozenset[str] | None = frozenset(TOPICS) - QUIET

    def plan(self, session: Session, events: Sequence[PlannedEvent]) -> Iterable[Planned]:
        at = now()
        rows: list[dict[str, Any]] = [
            {
                "staff_id": r.id,
                "outbox_id": pe.event.id,
                "topic": pe.event.topic,
                "payload": pe.event.payload,
                "created_at": at,
            }
            for pe in events
            for r in pe.recipients
            if r.kind == "staff" and self.name in r.channels
        ]
        if rows:
            insert = (pg_insert if is_postgres(session) else sqlite_insert)(_notices)
            session.execute(insert.on_conflict_do_nothing(), rows)
        return ()

    def deliver(self, job: Job, ctx: Context) -> str:  # never called: nothing is planned
        return "written at fan-out"


channel = InAppChannel()
