"""Read-side selects of return visits: the queue per unit, by due date."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from kefu.scope import Viewer, path_in_subtree, visible
from kefu.units.models import Unit
from kefu.visits.models import ReturnVisit


def visits(
    session: Session,
    viewer: Viewer,
    *,
    state: str | None = "scheduled",
    kind: str | None = None,
    unit_id: int | None = None,
    assignee_id: int | None = None,
    customer_id: int | None = None,
    ticket_id: int | None = None,
    overdue_at: datetime | None = None,
) -> Select[Any]:
    stmt = visible(select(ReturnVisit), ReturnVisit, viewer)
    if state:
        stmt = stmt.where(ReturnVisit.state == state)
    if kind:
        stmt = stmt.where(ReturnVisit.kind == kind)
    if unit_id is not None:
        path = session.scalar(select(Unit.path).where(Unit.id == unit_id)) or "/none/"
        stmt = stmt.where(
            ReturnVisit.owning_unit_id.in_(select(Unit.id).where(path_in_subtree(Unit.path, path)))
        )
    if assignee_id is not None:
        stmt = stmt.where(ReturnVisit.assignee_id == assignee_id)
    if customer_id is not None:
        stmt = stmt.where(ReturnVisit.customer_id == customer_id)
    if ticket_id is not None:
        stmt = stmt.where(ReturnVisit.ticket_id == ticket_id)
    if overdue_at is not None:
        stmt = stmt.where(ReturnVisit.due_at < overdue_at)
    return stmt
