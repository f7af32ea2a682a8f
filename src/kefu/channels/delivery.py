"""Fan-out, claims, attempts and their outcomes (see the package docstring).

The worker job (`kefu.jobs.deliver`) owns the transactions: `fan_out` and `claim` each
run in one, `attempt` in none (it talks to receivers), `record` in one. On PostgreSQL the
claims take rows with FOR UPDATE SKIP LOCKED, so several workers split the work; on SQLite
the write lock serialises them.

A claim writes a fresh token into `claim`, counts the attempt and moves `next_attempt_at`
one lease (KEFU_DELIVERY_LEASE_SECONDS) ahead: nobody else takes the delivery while it
runs, and the outcome is recorded only where the token still matches. A worker stops
starting attempts of a batch well before its lease ends (they are released, not counted):
none starts later than 5 s + 3 × KEFU_WEBHOOK_TIMEOUT_SECONDS before the end, and each gets
a deadline 5 s before it; so two workers never run the same attempt. When a worker dies
mid-attempt, the delivery comes due again when the lease ends; the next claim finds the
old token and logs the lost attempt as `interrupted`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, exists, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from kefu.channels import recipients
from kefu.channels.base import (
    Context,
    Event,
    Job,
    PermanentError,
    RetryableError,
    channels,
)
from kefu.channels.models import Delivery, DeliveryAttempt, Notice
from kefu.channels.policy import backoff_seconds
from kefu.clock import now
from kefu.config import Settings, get_settings
from kefu.db import is_postgres
from kefu.notifications.models import OutboxMessage

log = logging.getLogger("kefu.delivery")

_deliveries = cast(Table, Delivery.__table__)
_attempts = cast(Table, DeliveryAttempt.__table__)
_outbox = cast(Table, OutboxMessage.__table__)

# Attempts are not started later than this before the lease ends.
LEASE_MARGIN_SECONDS = 5.0


def delivery_key(dedupe_key: str, channel: str, target: str) -> str:
    """The idempotency key of one delivery: stable for (event, channel, target)."""
    return hashlib.sha256(f"{dedupe_key}\x1f{channel}\x1f{target}".encode()).hexdigest()[:40]


def _insert(session: Session, table: Table) -> Any:
    return (pg_insert if is_postgres(session) else sqlite_insert)(table)


def _event(row: Any) -> Event:
    return Event(
        id=row.id,
        topic=row.topic,
        recipient=row.recipient,
        payload=row.payload or {},
        dedupe_key=row.dedupe_key,
        created_at=row.created_at,
    )


# --- fan-out --------------------------------------------------------------------------------


def fan_out(session: Session, limit: int) -> int:
    """Hand up to `limit` pending outbox rows to the channels; returns how many."""
    at = now()
    stmt = (
        select(_outbox)
        .where(_outbox.c.status == "pending", _outbox.c.available_at <= at)
        .order_by(_outbox.c.id)
        .limit(limit)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    events = [_event(r) for r in session.execute(stmt)]
    if not events:
        return 0
    planned_events = recipients.resolve(session, events)
    by_id = {e.id: e for e in events}
    rows: list[dict[str, Any]] = []
    for name, ch in channels().items():
        for p in ch.plan(session, planned_events):
            event = by_id[p.event_id]
            rows.append(
                {
                    "outbox_id": event.id,
                    "channel": name,
                    "target": p.target,
                    "key": delivery_key(event.dedupe_key, name, p.target),
                    "data": p.data,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": at,
                    "created_at": at,
                }
            )
    if rows:
        session.execute(_insert(session, _deliveries).on_conflict_do_nothing(), rows)
    session.execute(
        update(_outbox)
        .where(_outbox.c.id.in_([e.id for e in events]))
        .values(status="sent", attempts=_outbox.c.attempts + 1)
    )
    return len(events)


# --- claims ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    token: str
    jobs: list[Job]
    lease_ends: float  # time.monotonic()
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)  # per channel: prepare()


def claim(session: Session, limit: int, lease_seconds: float) -> Claimed:
    """Take up to `limit` due deliveries for one lease."""
    at = now()
    stmt = (
        select(
            _deliveries.c.id,
            _deliveries.c.outbox_id,
            _deliveries.c.channel,
            _deliveries.c.target,
            _deliveries.c.key,
            _deliveries.c.data,
            _deliveries.c.attempts,
            _deliveries.c.claim,
        )
        .where(_deliveries.c.status == "pending", _deliveries.c.next_attempt_at <= at)
        .order_by(_deliveries.c.next_attempt_at)
        .limit(limit)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    rows = session.execute(stmt).all()
    token = uuid.uuid4().hex
    lease_ends = time.monotonic() + lease_seconds
    if not rows:
        return Claimed(token, [], lease_ends)
    ids = [r.id for r in rows]
    session.execute(
        update(_deliveries)
        .where(_deliveries.c.id.in_(ids))
        .values(
            claim=token,
            attempts=_deliveries.c.attempts + 1,
            next_attempt_at=at + timedelta(seconds=lease_seconds),
        )
    )
    lost = [
        {
            "delivery_id": r.id,
            "attempt": r.attempts,
            "at": at,
            "duration_ms": 0,
            "outcome": "interrupted",
            "detail": "the worker stopped before recording the outcome",
        }
        for r in rows
        if r.claim is not None
    ]
    if lost:
        session.execute(_attempts.insert(), lost)
    outbox_ids = {r.outbox_id for r in rows}
    events = {
        e.id: _event(e)
        for e in session.execute(select(_outbox).where(_outbox.c.id.in_(outbox_ids)))
    }
    jobs = [
        Job(
            delivery_id=r.id,
            key=r.key,
            channel=r.channel,
            target=r.target,
            attempt=r.attempts + 1,
            data=r.data,
            event=events[r.outbox_id],
        )
        for r in rows
    ]
    extra: dict[str, dict[str, Any]] = {}
    registry = channels()
    for name in {j.channel for j in jobs}:
        prepare = getattr(registry.get(name), "prepare", None)
        if prepare is not None:
            extra[name] = prepare(session, [j for j in jobs if j.channel == name])
    return Claimed(token, jobs, lease_ends, extra)


# --- attempts (no transaction) -----------------------------------------------------------


@dataclass(frozen=True)
class Result:
    job: Job
    outcome: str  # delivered, retry, dead, skipped (not tried: target unreachable), released
    detail: str
    duration_ms: int
    at: datetime


def attempt(
    claimed: Claimed,
    factory: sessionmaker[Session] | None = None,
    settings: Settings | None = None,
) -> list[Result]:
    """Run every job of the claim (several at once), never past the lease."""
    settings = settings or get_settings()
    registry = channels()
    unreachable: set[tuple[str, str]] = set()
    guard = threading.Lock()
    # An attempt must be over before the lease ends: it gets `deadline`, and none starts
    # later than one that could use its whole timeout for connect, send and read.
    deadline = claimed.lease_ends - LEASE_MARGIN_SECONDS
    stop_starting = deadline - 3 * settings.webhook_timeout_seconds

    def one(job: Job) -> Result:
        started = now()
        if time.monotonic() >= stop_starting:
            return Result(job, "released", "lease ending", 0, started)
        with guard:
            down = (job.channel, job.target) in unreachable
        if down:
            return Result(job, "skipped", "receiver unreachable in this batch", 0, started)
        ch = registry.get(job.channel)
        t0 = time.monotonic()
        try:
            if ch is None:
                raise RetryableError(f"no channel {job.channel!r} in this worker")
            ctx = Context(factory, deadline, claimed.extra.get(job.channel, {}))
            detail = ch.deliver(job, ctx)
            outcome = "delivered"
        except RetryableError as exc:
            outcome, detail = "retry", str(exc)
            if exc.unreachable:
                with guard:
                    unreachable.add((job.channel, job.target))
        except PermanentError as exc:
            outcome, detail = "dead", str(exc)
        except Exception as exc:  # a bug in a channel must not stop the others
            log.exception("channel %s failed on delivery %s", job.channel, job.delivery_id)
            outcome, detail = "retry", f"{type(exc).__name__}: {exc}"
        ms = int((time.monotonic() - t0) * 1000)
        return Result(job, outcome, (detail or "")[:500], ms, started)

    jobs = claimed.jobs
    if not jobs:
        return []
    workers = max(1, min(settings.delivery_concurrency, len(jobs)))
    if workers == 1:
        return [one(j) for j in jobs]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kefu-deliver") as pool:
        return list(pool.map(one, jobs))


# --- outcomes ---------------------------------------------------------------------------------


def record(
    session: Session, claimed: Claimed, results: Sequence[Result], settings: Settings | None = None
) -> dict[str, int]:
    """Write the outcomes where the claim is still ours; returns counts per outcome."""
    settings = settings or get_settings()
    at = now()
    done: list[dict[str, Any]] = []
    again: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    log_rows: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for r in results:
        outcome = r.outcome
        if outcome == "retry" and r.job.attempt >= settings.delivery_max_attempts:
            outcome = "dead"
        counts[outcome] = counts.get(outcome, 0) + 1
        base = {"b_id": r.job.delivery_id, "b_claim": claimed.token}
        if outcome == "delivered":
            done.append(base)
        elif outcome == "dead":
            dead.append({**base, "b_error": r.detail})
        elif outcome == "retry":
            pause = backoff_seconds(
                r.job.attempt,
                settings.delivery_backoff_base_seconds,
                settings.delivery_backoff_max_seconds,
            )
            again.append(
                {
                    **base,
                    "b_next": at + timedelta(seconds=pause),
                    "b_attempts": r.job.attempt,
                    "b_error": r.detail,
                }
            )
        else:  # skipped or released: not tried, not counted
            pause = (
                0.0
                if outcome == "released"
                else backoff_seconds(
                    max(1, r.job.attempt - 1) or 1,
                    settings.delivery_backoff_base_seconds,
                    settings.delivery_backoff_max_seconds,
                )
            )
            again.append(
                {
                    **base,
                    "b_next": at + timedelta(seconds=pause),
                    "b_attempts": r.job.attempt - 1,
                    "b_error": r.detail if outcome == "skipped" else None,
                }
            )
            continue
        log_rows.append(
            {
                "delivery_id": r.job.delivery_id,
                "attempt": r.job.attempt,
                "at": r.at,
                "duration_ms": r.duration_ms,
                "outcome": outcome,
                "detail": r.detail,
            }
        )
    mine = (_deliveries.c.id == bindparam("b_id")) & (_deliveries.c.claim == bindparam("b_claim"))
    if done:
        session.execute(
            update(_deliveries)
            .where(mine)
            .values(status="delivered", claim=None, delivered_at=at, last_error=None),
            done,
        )
    if again:
        session.execute(
            update(_deliveries)
            .where(mine)
            .values(
                claim=None,
                next_attempt_at=bindparam("b_next"),
                attempts=bindparam("b_attempts"),
                last_error=bindparam("b_error"),
            ),
            again,
        )
    if dead:
        session.execute(
            update(_deliveries)
            .where(mine)
            .values(status="dead", claim=None, last_error=bindparam("b_error")),
            dead,
        )
    if log_rows:
        session.execute(_attempts.insert(), log_rows)
    return counts


# --- housekeeping -----------------------------------------------------------------------------


def purge(session: Session, keep_days: int) -> dict[str, int]:
    """Forget what is done and older than `keep_days`: read notices, then outbox events whose
    every delivery was delivered and that no notice still points to (their deliveries and
    attempts go with them). Dead letters, waiting deliveries and unread notices stay."""
    cutoff = now() - timedelta(days=keep_days)
    notices = session.execute(
        delete(Notice).where(Notice.read_at.is_not(None), Notice.created_at < cutoff)
    )
    undone = exists().where(
        _deliveries.c.outbox_id == _outbox.c.id, _deliveries.c.status != "delivered"
    )
    noticed = exists().where(Notice.outbox_id == _outbox.c.id)
    events = session.execute(
        delete(_outbox).where(
            _outbox.c.status == "sent", _outbox.c.created_at < cutoff, ~undone, ~noticed
        )
    )
    return {
        "notices": int(getattr(notices, "rowcount", 0) or 0),
        "events": int(getattr(events, "rowcount", 0) or 0),
    }
