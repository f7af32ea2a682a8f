"""The SLA escalation ladder: warn the assignee at a share of a target, tell the unit head at
the breach, and the parent unit (上报) a while after it.

Targets: first response (until the first public reply), next response (while a customer's
reply waits for an answer; each such wait is a new `cycle` with a ladder of its own) and
resolution (until resolved). A step happens exactly once per ticket, target, cycle and
stage: the unique row in `escalation_steps` is the proof, and the ticket's timeline event
(kind "sla") and the outbox notification are written from that row in the same
transaction.

The warning instant is a share of the target in *business* time: it is computed when the
due time is set (`warn_instant`, called next to `sla.due`) and stored on the ticket, and it
moves with the due times when a pause ends. Storing it keeps the sweep a plain indexed
comparison; the share in force when the due time was set applies to that ticket.

Each target also keeps its level on the ticket (`<target>_escalation`: 0, 1 warned, 2 unit
head told, 3 parent told), so the sweep reads two small partial indexes per target that
hold only what may still escalate, never the history of steps.

The sweep is set-based, one statement per stage and target: an `INSERT … SELECT` claims the
due tickets into `escalation_steps` (ON CONFLICT DO NOTHING), on PostgreSQL locking them
with FOR UPDATE SKIP LOCKED so that concurrent workers split the work instead of queueing
behind each other (a ticket one worker holds is left to the other, or to the next sweep);
an `UPDATE … FROM` of the rows just claimed raises the level (and at the breach sets
`breached_first_response` / `breached_resolution`); at the end one `INSERT … SELECT` each
writes the timeline events and the outbox rows of every step this sweep took. Paused
tickets (pending, or on hold when the level pauses then) do not escalate; met targets,
resolved and closed tickets stop.

The delay before the parent unit is told counts calendar time from the due time
(KEFU_ESCALATE_PARENT_AFTER_MINUTES): "two hours after the breach", whatever the hours.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    String,
    Table,
    and_,
    case,
    false,
    func,
    literal,
    literal_column,
    select,
    text,
    true,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from kefu.clock import now
from kefu.config import get_settings
from kefu.db import UTCDateTime, is_postgres
from kefu.i18n import N_
from kefu.notifications.models import OutboxMessage
from kefu.sla import service as sla
from kefu.staff.models import Staff, StaffRole
from kefu.tickets.models import (
    ESCALATION_LEVELS,
    ESCALATION_STAGES,
    ESCALATION_TARGETS,
    SLA_AFTER_BREACH,
    SLA_BEFORE_BREACH,
    SLA_COLUMNS,
    EscalationStep,
    Ticket,
    TicketEvent,
)
from kefu.units.models import Unit

TOPICS = {"warn": "sla.warning", "breach": "sla.breach", "parent": "sla.escalated"}
# Notification titles and timeline descriptions (msgids, translated where shown).
TITLES: dict[tuple[str, str], str] = {
    ("first_response", "warn"): N_("First response due soon"),
    ("first_response", "breach"): N_("First response overdue"),
    ("first_response", "parent"): N_("First response overdue: escalated to the parent unit"),
    ("next_response", "warn"): N_("Next response due soon"),
    ("next_response", "breach"): N_("Next response overdue"),
    ("next_response", "parent"): N_("Next response overdue: escalated to the parent unit"),
    ("resolution", "warn"): N_("Resolution due soon"),
    ("resolution", "breach"): N_("Resolution overdue"),
    ("resolution", "parent"): N_("Resolution overdue: escalated to the parent unit"),
}

_tickets = cast(Table, Ticket.__table__)
_steps = cast(Table, EscalationStep.__table__)
_units = cast(Table, Unit.__table__)


def title(target: str, stage: str) -> str:
    """The msgid describing an escalation step (timeline, notification)."""
    return TITLES[(target, stage)]


def warn_instant(
    session: Session, unit_id: int, start: datetime, minutes: float, always_open: bool
) -> datetime:
    """start + share × (due − start), in business time of the unit's calendar: the instant
    at which `share` of the target's `minutes` have elapsed."""
    return sla.due(session, unit_id, start, warn_minutes(minutes), always_open)


def warn_minutes(minutes: float) -> float:
    """The business minutes of a target after which its assignee is warned."""
    return get_settings().sla_warn_share * minutes


# --- the sweep --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    name: str
    due: Any  # the ticket's columns: due time, warning instant, escalation level
    warn_at: Any
    level: Any
    cycle: ColumnElement[int]
    breached: Any | None  # the ticket's breach flag, where it has one


_TARGETS = tuple(
    _Target(
        name,
        *SLA_COLUMNS[name],
        _tickets.c.next_response_cycle if name == "next_response" else literal_column("0"),
        {
            "first_response": _tickets.c.breached_first_response,
            "resolution": _tickets.c.breached_resolution,
        }.get(name),
    )
    for name in ESCALATION_TARGETS
)


def _sql(value: str) -> Any:
    """A constant of the code as an SQL literal (never input): typed for both databases and
    visible to the planners (partial-index matching needs literals, not parameters)."""
    return literal_column("'" + value.replace("'", "''") + "'", String)


def _text(column: Any) -> Any:
    return sql_cast(column, String)


def _unit_head(unit_id: Any) -> Any:
    """'staff:<id>' of the unit's supervisor (the lowest id when several), else
    'unit_head:<unit id>' for delivery to resolve."""
    head = (
        select(func.min(Staff.id))
        .join(StaffRole, and_(StaffRole.staff_id == Staff.id, StaffRole.role == _sql("supervisor")))
        .where(Staff.unit_id == unit_id, Staff.is_active == true())
        .scalar_subquery()
    )
    return func.coalesce(_sql("staff:") + _text(head), _sql("unit_head:") + _text(unit_id))


def _insert(pg: bool, table: Any) -> Any:
    return (pg_insert if pg else sqlite_insert)(table)


def _claim(
    pg: bool, target: _Target, stage: str, at: datetime, cutoff: datetime, sweep_id: str
) -> Any:
    """INSERT … SELECT of the steps of one (target, stage) that are due now.

    The ticket's escalation level says which steps were taken, so each claim reads one
    partial index holding only what may still escalate (no anti-join with the growing steps
    table); the unique step stays the proof, and ON CONFLICT DO NOTHING its guard.
    """
    source: Any = _tickets
    if stage == "warn":
        # A warning after the due time is noise: the breach step says more.
        conditions = [
            SLA_BEFORE_BREACH[target.name],
            target.level == literal_column("0"),
            target.warn_at <= at,
            target.due > at,
        ]
        recipient = func.coalesce(
            _sql("staff:") + _text(_tickets.c.assignee_id),
            _sql("unit:") + _text(_tickets.c.handling_unit_id),
        )
    elif stage == "breach":
        # warn_at <= due: the index on warn_at finds the breached ones among the pending.
        conditions = [SLA_BEFORE_BREACH[target.name], target.warn_at <= at, target.due <= at]
        recipient = _unit_head(_tickets.c.handling_unit_id)
    else:  # parent: a while after the breach, when the handling unit has a parent
        source = _tickets.join(_units, _units.c.id == _tickets.c.handling_unit_id)
        conditions = [
            SLA_AFTER_BREACH[target.name],
            target.due <= cutoff,
            _units.c.parent_id.is_not(None),
        ]
        recipient = _sql("unit:") + _text(_units.c.parent_id)
    rows = (
        select(
            _tickets.c.id,
            _sql(target.name),
            target.cycle,
            _sql(stage),
            target.due,
            recipient,
            literal(at, UTCDateTime()),
            literal(sweep_id, String),
        )
        .select_from(source)
        .where(*conditions)
    )
    if pg:
        # Tickets another worker (or a person's change) holds are left to the next sweep.
        rows = rows.with_for_update(of=_tickets, skip_locked=True)
    return (
        _insert(pg, _steps)
        .from_select(
            ["ticket_id", "target", "cycle", "stage", "due", "recipient", "at", "sweep"], rows
        )
        .on_conflict_do_nothing()
    )


def _climb(target: _Target, stage: str, sweep_id: str) -> Any:
    """UPDATE … FROM: the escalation level (and at the breach, the breach flag) of the
    tickets whose step this sweep took."""
    values: dict[str, Any] = {target.level.key: ESCALATION_LEVELS[stage]}
    if stage == "breach" and target.breached is not None:
        values[target.breached.key] = True
    return (
        update(_tickets)
        .where(
            _tickets.c.id == _steps.c.ticket_id,
            _steps.c.sweep == sweep_id,
            _steps.c.target == _sql(target.name),
            _steps.c.stage == _sql(stage),
        )
        .values(values)
    )


def _json(pg: bool, pairs: dict[str, Any]) -> Any:
    args: list[Any] = []
    for key, value in pairs.items():
        args += [_sql(key), value]
    return func.json_build_object(*args) if pg else func.json_object(*args)


def _iso(pg: bool, column: Any) -> Any:
    """An instant as ISO 8601 in UTC ('2026-11-24T03:00:00+00:00') on both databases."""
    if pg:
        return func.to_char(
            func.timezone(_sql("UTC"), column), _sql('YYYY-MM-DD"T"HH24:MI:SS"+00:00"')
        )
    return func.strftime(_sql("%Y-%m-%dT%H:%M:%S+00:00"), column)


def _number(pg: bool) -> Any:
    """Ticket.number in SQL: 'T' + the year opened (UTC) + '-' + the id on 7 digits."""
    ident = _text(_tickets.c.id)
    if pg:
        year = func.to_char(func.timezone(_sql("UTC"), _tickets.c.created_at), _sql("YYYY"))
        digits = func.lpad(ident, func.greatest(7, func.length(ident)), _sql("0"))
    else:
        year = func.strftime(_sql("%Y"), _tickets.c.created_at)
        digits = func.printf(_sql("%07d"), _tickets.c.id)
    return _sql("T") + year + _sql("-") + digits


def _write_effects(session: Session, pg: bool, sweep_id: str) -> None:
    """The timeline events and the outbox rows of the steps this sweep claimed."""
    claimed = _steps.c.sweep == sweep_id
    due = _iso(pg, _steps.c.due)
    session.execute(
        cast(Table, TicketEvent.__table__)
        .insert()
        .from_select(
            ["ticket_id", "at", "kind", "actor", "public", "body", "data"],
            select(
                _steps.c.ticket_id,
                _steps.c.at,
                _sql("sla"),
                _sql("system"),
                false(),
                _sql(""),
                _json(
                    pg,
                    {
                        "target": _steps.c.target,
                        "stage": _steps.c.stage,
                        "due": due,
                        "recipient": _steps.c.recipient,
                    },
                ),
            )
            .where(claimed)
            .order_by(_steps.c.id),
        )
    )
    topic = case(*[(_steps.c.stage == _sql(s), _sql(t)) for s, t in TOPICS.items()])
    msgid = case(
        *[
            (and_(_steps.c.target == _sql(tg), _steps.c.stage == _sql(st)), _sql(m))
            for (tg, st), m in TITLES.items()
        ]
    )
    cycle = case((_steps.c.cycle > 0, _sql("#") + _text(_steps.c.cycle)), else_=_sql(""))
    dedupe = (
        _sql("sla:")
        + _text(_steps.c.ticket_id)
        + _sql(":")
        + _steps.c.target
        + cycle
        + _sql(":")
        + _steps.c.stage
    )
    payload = _json(
        pg,
        {
            "ticket_id": _steps.c.ticket_id,
            "number": _number(pg),
            "subject": _tickets.c.subject,
            "target": _steps.c.target,
            "stage": _steps.c.stage,
            "due": due,
            "title": msgid,
        },
    )
    session.execute(
        _insert(pg, OutboxMessage.__table__)
        .from_select(
            [
                "topic",
                "recipient",
                "payload",
                "dedupe_key",
                "status",
                "attempts",
                "available_at",
                "created_at",
            ],
            select(
                topic,
                _steps.c.recipient,
                payload,
                dedupe,
                _sql("pending"),
                literal_column("0"),
                _steps.c.at,
                _steps.c.at,
            )
            .select_from(_steps.join(_tickets, _tickets.c.id == _steps.c.ticket_id))
            .where(claimed)
            .order_by(_steps.c.id),
        )
        .on_conflict_do_nothing()
    )


def sweep(session: Session, *, parent_after: timedelta | None = None) -> dict[str, int]:
    """Take every escalation step that is due now, once; returns the steps taken per
    "target.stage" (only those with any) and their total under "steps"."""
    if parent_after is None:
        parent_after = timedelta(minutes=get_settings().escalate_parent_after_minutes)
    session.flush()
    pg = is_postgres(session)
    at = now()
    cutoff = at - parent_after
    sweep_id = uuid.uuid4().hex
    counts: dict[str, int] = {}
    if pg:
        # Short statements over few rows: compiling them (JIT) would cost more than running.
        session.execute(text("SET LOCAL jit = off"))
    for stage in ESCALATION_STAGES:
        for target in _TARGETS:
            claim = _claim(pg, target, stage, at, cutoff, sweep_id)
            result = cast(
                CursorResult[Any],
                session.execute(claim, execution_options={"preserve_rowcount": True}),
            )
            if result.rowcount:
                counts[f"{target.name}.{stage}"] = result.rowcount
                # Before the next stage's claim, which reads the level.
                session.execute(_climb(target, stage, sweep_id))
    total = sum(counts.values())
    if total:
        _write_effects(session, pg, sweep_id)
    return {"steps": total, **counts}
