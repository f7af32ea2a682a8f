"""Tickets on the customer's timeline: each ticket when it was opened (number and
category only: the ticket itself stays behind its own scope check)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kefu.customers.timeline import TimelineItem
from kefu.i18n import N_
from kefu.tickets.models import Ticket


def tickets_opened(
    session: Session, customer_id: int, before: datetime | None, limit: int
) -> list[TimelineItem]:
    stmt = (
        select(Ticket)
        .where(Ticket.customer_id == customer_id)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(Ticket.created_at < before)
    return [
        TimelineItem(
            at=t.created_at,
            kind="ticket",
            title=N_("Ticket {number} opened"),
            params={"number": t.number},
            actor=t.created_by,
            ref=f"/tickets/{t.id}",
        )
        for t in session.scalars(stmt)
    ]
