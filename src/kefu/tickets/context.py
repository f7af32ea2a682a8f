"""The customer context shown beside a ticket: tier, service level with its entitlements and
targets, the customer's other open tickets (within the viewer's scope), the account manager
and the last satisfaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kefu.customers.models import Customer
from kefu.scope import Viewer
from kefu.service_levels.models import ServiceLevel, ServiceLevelVersion, SlaTarget
from kefu.staff.models import Staff
from kefu.tickets import queries
from kefu.tickets.models import Ticket

OTHER_OPEN_SHOWN = 5


@dataclass(frozen=True)
class Satisfaction:
    index: float  # Σ perceived ÷ Σ expected × 100
    csat: int | None
    nps: int | None
    answered_at: datetime


@dataclass
class CustomerContext:
    customer: Customer
    level: ServiceLevelVersion | None
    targets: list[SlaTarget] = field(default_factory=list)  # general rows, by priority
    other_open: list[Ticket] = field(default_factory=list)
    other_open_count: int = 0
    account_manager: Staff | None = None
    satisfaction: Satisfaction | None = None


def last_satisfaction(session: Session, customer_id: int) -> Satisfaction | None:
    """The customer's latest survey answer, or None when they never answered one."""
    from kefu.surveys.queries import last_for_customer

    answer = last_for_customer(session, customer_id)
    if answer is None:
        return None
    return Satisfaction(answer.index, answer.csat, answer.nps, answer.answered_at)


def _level(session: Session, code: str | None) -> ServiceLevelVersion | None:
    if not code:
        return None
    return session.scalar(
        select(ServiceLevelVersion)
        .join(ServiceLevel, ServiceLevel.current_version_id == ServiceLevelVersion.id)
        .where(ServiceLevel.code == code)
    )


def customer_context(session: Session, viewer: Viewer, ticket: Ticket) -> CustomerContext:
    customer = session.get(Customer, ticket.customer_id)
    assert customer is not None  # a ticket's customer is never deleted (RESTRICT)
    level = _level(session, customer.service_level or ticket.service_level)
    targets: list[SlaTarget] = []
    if level is not None:
        order = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
        rows = session.scalars(
            select(SlaTarget).where(
                SlaTarget.version_id == level.id, SlaTarget.category_code.is_(None)
            )
        )
        targets = sorted(rows, key=lambda t: order.get(t.priority, 9))
    # The customer's other open tickets that this viewer may see (never more).
    others = queries.tickets(session, viewer, open_only=True, customer_id=customer.id).where(
        Ticket.id != ticket.id
    )
    count = session.scalar(select(func.count()).select_from(others.subquery())) or 0
    shown = list(
        session.scalars(others.order_by(Ticket.resolution_due, Ticket.id).limit(OTHER_OPEN_SHOWN))
    )
    manager = (
        session.get(Staff, customer.account_manager_id) if customer.account_manager_id else None
    )
    return CustomerContext(
        customer=customer,
        level=level,
        targets=targets,
        other_open=shown,
        other_open_count=int(count),
        account_manager=manager,
        satisfaction=last_satisfaction(session, customer.id),
    )
