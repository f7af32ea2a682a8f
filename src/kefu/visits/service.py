"""Return visits: scheduled when a ticket is resolved and, for key accounts, periodically;
worked from a queue; escalated when overdue. Services flush; the edge commits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from kefu.audit.service import record
from kefu.clock import now
from kefu.config import get_settings
from kefu.customers.models import Customer
from kefu.errors import Conflict, Invalid
from kefu.i18n import N_
from kefu.notifications.service import notify
from kefu.scope import Viewer, get_visible
from kefu.service_levels.models import ServiceLevel, ServiceLevelVersion
from kefu.sla import service as sla
from kefu.tickets.models import Ticket, TicketEvent
from kefu.units.models import Unit
from kefu.visits import policy
from kefu.visits.models import ReturnVisit, ReturnVisitAttempt
from kefu.visits.schemas import OutcomeIn

# Above this many the overdue sweep leaves the rest to its next run (each step is one row).
SWEEP_BATCH = 1000


def _timeline(session: Session, visit: ReturnVisit, kind: str, actor: str, **data: Any) -> None:
    if visit.ticket_id is not None:
        session.add(
            TicketEvent(
                ticket_id=visit.ticket_id,
                at=now(),
                kind=kind,
                actor=actor,
                public=False,
                data={"visit_id": visit.id, **data},
            )
        )


def _visits_of(session: Session, ticket_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(ReturnVisit)
            .where(ReturnVisit.ticket_id == ticket_id, ReturnVisit.kind == "ticket")
        )
        or 0
    )


def schedule_after_resolution(
    session: Session, ticket: Ticket, version: ServiceLevelVersion | None, at: datetime
) -> ReturnVisit:
    """The return visit a resolved ticket is owed, due by its level's deadline counted in
    business time of the owning unit (the unit that keeps the customer relationship)."""
    hours = version.return_visit_hours if version else policy.DEFAULT_VISIT_HOURS
    always = bool(version and version.is_24x7)
    visit = ReturnVisit(
        kind="ticket",
        method=version.return_visit_method if version else "phone",
        customer_id=ticket.customer_id,
        contact_id=ticket.contact_id,
        ticket_id=ticket.id,
        owning_unit_id=ticket.owning_unit_id,
        assignee_id=ticket.assignee_id,
        due_at=sla.due(session, ticket.owning_unit_id, at, hours * 60, always),
        # One per resolution: the ticket's n-th visit (resolutions of a ticket are serial,
        # its version guards them), so a reopen and a resolve within one instant still fit.
        dedupe_key=f"ticket:{ticket.id}:{_visits_of(session, ticket.id) + 1}",
        created_at=at,
    )
    session.add(visit)
    session.flush()
    _timeline(session, visit, "visit", "system", due_at=visit.due_at.isoformat(), step="scheduled")
    return visit


def cancel_for_ticket(session: Session, ticket_id: int, actor: str) -> int:
    """A reopened ticket owes no visit until it is resolved again."""
    ids = list(
        session.scalars(
            select(ReturnVisit.id).where(
                ReturnVisit.ticket_id == ticket_id, ReturnVisit.state == "scheduled"
            )
        )
    )
    if ids:
        session.execute(
            update(ReturnVisit)
            .where(ReturnVisit.id.in_(ids))
            .values(state="cancelled", completed_at=now(), completed_by=actor)
            .execution_options(synchronize_session=False)
        )
    return len(ids)


def closes_complaint(session: Session, ticket_id: int) -> bool:
    """A complaint closes only after a return visit that reached the customer."""
    return (
        session.scalar(
            select(func.count())
            .select_from(ReturnVisit)
            .where(
                ReturnVisit.ticket_id == ticket_id,
                ReturnVisit.state == "done",
                ReturnVisit.reached.is_(True),
            )
        )
        or 0
    ) > 0


def get_visit(
    session: Session, viewer: Viewer, visit_id: int, for_update: bool = False
) -> ReturnVisit:
    return get_visible(session, ReturnVisit, visit_id, viewer, for_update=for_update)


def record_outcome(session: Session, viewer: Viewer, visit_id: int, data: OutcomeIn) -> ReturnVisit:
    """One call or trip. Not reached: tried again later, failed after the last attempt.
    Reached: done, with what the customer said; unhappy or a follow-up tells the unit head."""
    visit = get_visit(session, viewer, visit_id, for_update=True)
    if visit.version != data.version:
        raise Conflict(N_("Someone else changed this record; reload it and try again."))
    if visit.state != "scheduled":
        raise Invalid.field("state", N_("This return visit is finished already."))
    if data.reached and data.satisfied is None:
        raise Invalid.field("satisfied", N_("Say whether the customer is satisfied."))
    settings = get_settings()
    at = now()
    words = data.customer_words.strip()
    session.add(
        ReturnVisitAttempt(
            visit_id=visit.id, at=at, by=viewer.username, reached=data.reached, note=words
        )
    )
    before = {"state": visit.state, "attempts": visit.attempts}
    if data.reached:
        visit.state = "done"
        visit.reached = True
        visit.satisfied = data.satisfied
        visit.follow_up = data.follow_up
        visit.customer_words = words
        visit.completed_at = at
        visit.completed_by = viewer.username
        visit.next_attempt_at = None
    else:
        visit.attempts += 1
        visit.state = policy.after_unreached(visit.attempts, settings.visit_max_attempts)
        if visit.state == "failed":
            visit.reached = False
            visit.completed_at = at
            visit.completed_by = viewer.username
            visit.next_attempt_at = None
        else:
            visit.next_attempt_at = at + timedelta(hours=settings.visit_retry_hours)
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict(N_("Someone else changed this record; reload it and try again.")) from exc
    _timeline(
        session,
        visit,
        "visit",
        viewer.username,
        step=visit.state if visit.state != "scheduled" else "unreached",
        reached=data.reached,
        satisfied=visit.satisfied,
        follow_up=visit.follow_up,
    )
    record(
        session,
        viewer,
        "visit.outcome",
        "return_visit",
        visit.id,
        {
            "state": {"before": before["state"], "after": visit.state},
            "attempts": {"before": before["attempts"], "after": visit.attempts},
        },
    )
    if visit.state == "failed" or visit.satisfied is False or visit.follow_up:
        notify(
            session,
            "visit.attention",
            f"unit_head:{visit.owning_unit_id}",
            {
                "visit_id": visit.id,
                "customer_id": visit.customer_id,
                "ticket_id": visit.ticket_id,
                "state": visit.state,
                "satisfied": visit.satisfied,
                "follow_up": visit.follow_up,
            },
            f"visit.attention:{visit.id}",
        )
    return visit


# --- worker jobs ----------------------------------------------------------------------------


def schedule_periodic(session: Session, at: datetime | None = None) -> int:
    """Plan the next periodic visit of every key account whose level sets a visit frequency
    and that has none scheduled. Idempotent: the dedupe key names customer and day, so two
    workers planning at once insert one visit."""
    at = at or now()
    last = (
        select(
            ReturnVisit.customer_id.label("customer_id"),
            func.max(ReturnVisit.due_at).label("last_due"),
        )
        .where(ReturnVisit.kind == "periodic")
        .group_by(ReturnVisit.customer_id)
        .subquery()
    )
    scheduled = select(ReturnVisit.id).where(
        ReturnVisit.customer_id == Customer.id,
        ReturnVisit.kind == "periodic",
        ReturnVisit.state == "scheduled",
    )
    rows = session.execute(
        select(
            Customer.id,
            Customer.owning_unit_id,
            Customer.account_manager_id,
            ServiceLevelVersion.visit_frequency_days,
            last.c.last_due,
        )
        .join(ServiceLevel, ServiceLevel.code == Customer.service_level)
        .join(ServiceLevelVersion, ServiceLevelVersion.id == ServiceLevel.current_version_id)
        .outerjoin(last, last.c.customer_id == Customer.id)
        .where(
            Customer.status == "active",
            ServiceLevelVersion.visit_frequency_days.is_not(None),
            ~scheduled.exists(),
        )
    ).all()
    made = 0
    for customer_id, unit_id, manager_id, frequency, last_due in rows:
        due = policy.next_periodic_due(customer_id, frequency, last_due, at)
        key = f"periodic:{customer_id}:{due:%Y-%m-%d}"
        if session.scalar(select(ReturnVisit.id).where(ReturnVisit.dedupe_key == key)):
            continue
        session.add(
            ReturnVisit(
                kind="periodic",
                method="onsite",
                customer_id=customer_id,
                owning_unit_id=unit_id,
                assignee_id=manager_id,
                due_at=due,
                dedupe_key=key,
                created_at=at,
            )
        )
        made += 1
    session.flush()
    return made


def sweep_overdue(
    session: Session, at: datetime | None = None, parent_after: timedelta | None = None
) -> dict[str, int]:
    """Overdue visits escalate like SLA targets: at the due date the unit head is told, a
    while later (KEFU_ESCALATE_PARENT_AFTER_MINUTES) the parent unit. Each step once: the
    level on the visit is raised by the statement that claims it (SKIP LOCKED on
    PostgreSQL, so two workers split the work)."""
    at = at or now()
    if parent_after is None:
        parent_after = timedelta(minutes=get_settings().escalate_parent_after_minutes)
    out = {}
    for level, cutoff, stage in ((0, at, "breach"), (1, at - parent_after, "parent")):
        claim = (
            select(ReturnVisit.id)
            .where(
                ReturnVisit.state == "scheduled",
                ReturnVisit.escalation == level,
                ReturnVisit.due_at <= cutoff,
            )
            .order_by(ReturnVisit.due_at)
            .limit(SWEEP_BATCH)
            .with_for_update(skip_locked=True)
        )
        ids = list(session.scalars(claim))
        if ids:
            session.execute(
                update(ReturnVisit)
                .where(ReturnVisit.id.in_(ids), ReturnVisit.escalation == level)
                .values(escalation=level + 1)
                .execution_options(synchronize_session=False)
            )
        claimed = session.execute(
            select(ReturnVisit, Unit.parent_id)
            .join(Unit, Unit.id == ReturnVisit.owning_unit_id)
            .where(ReturnVisit.id.in_(ids))
            .execution_options(populate_existing=True)
        ).all()
        for visit, parent_id in claimed:
            if stage == "breach":
                recipient = f"unit_head:{visit.owning_unit_id}"
            elif parent_id is not None:
                recipient = f"unit:{parent_id}"
            else:
                continue
            _timeline(
                session, visit, "visit", "system", step=f"overdue_{stage}", recipient=recipient
            )
            notify(
                session,
                "visit.overdue",
                recipient,
                {
                    "visit_id": visit.id,
                    "customer_id": visit.customer_id,
                    "ticket_id": visit.ticket_id,
                    "due_at": visit.due_at.isoformat(),
                    "stage": stage,
                },
                f"visit.overdue:{visit.id}:{stage}",
            )
        out[stage] = len(ids)
    session.flush()
    return out


def attempts(session: Session, visit_id: int) -> list[ReturnVisitAttempt]:
    """A visit's calls and trips, oldest first (the caller checked the visit's scope)."""
    return list(
        session.scalars(
            select(ReturnVisitAttempt)
            .where(ReturnVisitAttempt.visit_id == visit_id)
            .order_by(ReturnVisitAttempt.id)
        )
    )
