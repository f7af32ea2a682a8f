"""Read-side selects of tickets: queues and filtered lists."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from dataclasses import replace
from typing import Any

from sqlalchemy import Select, String, or_, select
from sqlalchemy.orm import Session

from kefu.customers.models import Contact, Customer
from kefu.scope import Viewer, path_in_subtree, visible
from kefu.tickets import fields
from kefu.tickets.models import OPEN, Category, Ticket
from kefu.tickets.policy import OPEN_STATES
from kefu.tickets.schemas import ViewFilters
from kefu.units.models import Unit


def _one_or_many(column: Any, values: Collection[str]) -> Any:
    return column == next(iter(values)) if len(values) == 1 else column.in_(sorted(values))


def tickets(
    session: Session,
    viewer: Viewer,
    *,
    state: str | Collection[str] | None = None,
    open_only: bool = False,
    priority: Collection[str] = (),
    category_code: Collection[str] = (),
    tier: Collection[str] = (),
    service_level: Collection[str] = (),
    breached: bool | None = None,
    unit_id: int | None = None,
    assignee_id: int | None = None,
    unassigned: bool = False,
    customer_id: int | None = None,
    q: str | None = None,
    tag: str | None = None,
    field_filters: Iterable[str] = (),
) -> Select[Any]:
    """Visible tickets, narrowed by each filter given. A filter of several values matches any
    of them; in `state`, "open_states" stands for the four open states."""
    below: Any = None
    scoped_as = viewer
    if unit_id is not None:
        path = session.scalar(select(Unit.path).where(Unit.id == unit_id)) or "/none/"
        below = select(Unit.id).where(path_in_subtree(Unit.path, path))
        if viewer.is_admin or (viewer.unit_path and path.startswith(viewer.unit_path)):
            # A unit the viewer sees whole: scoped as if the viewer worked there, which
            # keeps the same rows (the unit filter below implies the wider scope) but lets
            # a page be read unit by unit of that subtree, not of the viewer's whole one.
            scoped_as = replace(viewer, unit_path=path, roles=viewer.roles - {"admin"})
    stmt = visible(select(Ticket), Ticket, scoped_as)
    states = {state} if isinstance(state, str) else set(state or ())
    if "open_states" in states:
        states.discard("open_states")
        if states - set(OPEN_STATES):  # some open, some not: a plain IN of them all
            states |= set(OPEN_STATES)
        else:
            states, open_only = set(), True
    if states:
        stmt = stmt.where(_one_or_many(Ticket.state, states))
    if open_only:
        stmt = stmt.where(OPEN)  # literal states: the queue indexes are partial on them
    if priority:
        stmt = stmt.where(_one_or_many(Ticket.priority, priority))
    if category_code:
        stmt = stmt.where(_one_or_many(Ticket.category_code, category_code))
    if service_level:
        stmt = stmt.where(_one_or_many(Ticket.service_level, service_level))
    if tier:
        tiered = select(Customer.id).where(_one_or_many(Customer.tier, tier))
        stmt = stmt.where(Ticket.customer_id.in_(tiered))
    if breached is not None:
        either = Ticket.breached_first_response | Ticket.breached_resolution
        stmt = stmt.where(either if breached else ~either)
    if below is not None:
        stmt = stmt.where(or_(Ticket.handling_unit_id.in_(below), Ticket.owning_unit_id.in_(below)))
    if assignee_id is not None:
        stmt = stmt.where(Ticket.assignee_id == assignee_id)
    if unassigned:
        stmt = stmt.where(Ticket.assignee_id.is_(None))
    if customer_id is not None:
        stmt = stmt.where(Ticket.customer_id == customer_id)
    if q:
        stmt = stmt.where(Ticket.subject.contains(q, autoescape=True))
    if tag:
        # Tags hold no quotes or backslashes, so '"tag"' in the stored array's text is
        # exactly that element (serialised as the column serialises it). Not indexed: it
        # narrows lists that scope and the other filters have made small already.
        quoted = json.dumps(" ".join(tag.split()).lower())
        stmt = stmt.where(Ticket.tags.cast(String).contains(quoted, autoescape=True))
    for expression in field_filters:
        stmt = stmt.where(fields.filter_condition(session, expression))
    return stmt


def filtered(
    session: Session,
    viewer: Viewer,
    f: ViewFilters,
    *,
    customer_id: int | None = None,
) -> Select[Any]:
    """The tickets of a saved view's filters (or the list API's), always within the viewer's
    scope: a view only narrows, it never widens what the viewer sees."""
    return tickets(
        session,
        viewer,
        state=f.state,
        priority=f.priority or (),
        category_code=f.category or (),
        tier=f.tier or (),
        service_level=f.service_level or (),
        breached=f.breached,
        unit_id=f.unit_id,
        assignee_id=(viewer.staff_id or -1) if f.assignee == "me" else None,
        unassigned=f.assignee == "unassigned",
        customer_id=customer_id,
        q=f.q,
        tag=f.tag,
        field_filters=f.field,
    )


def categories(session: Session) -> list[Category]:
    return list(
        session.scalars(
            select(Category).where(Category.is_active.is_(True)).order_by(Category.sort_order)
        )
    )


def rows_by_id(session: Session, model: Any, ids: Iterable[int | None]) -> dict[int, Any]:
    """Rows shown beside tickets (customers, staff, units), by id, in one query."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(wanted)))}


def intake_customers(session: Session, viewer: Viewer, q: str, limit: int = 10) -> list[Customer]:
    """Agent intake's look-up: visible customers by name, short name or credit code, then
    those with a contact whose phone contains the digits typed."""
    from kefu.customers.queries import customers

    q = q.strip()
    if not q:
        return []
    stmt = customers(session, viewer, q=q).order_by(Customer.name, Customer.id).limit(limit)
    found = list(session.scalars(stmt))
    digits = re.sub(r"[\s\-+()]", "", q)
    if len(found) < limit and len(digits) >= 4 and digits.isdigit():
        phones = select(Contact.customer_id).where(Contact.phone.contains(digits, autoescape=True))
        by_phone = (
            visible(select(Customer), Customer, viewer)
            .where(Customer.id.in_(phones), Customer.id.not_in([c.id for c in found] or [-1]))
            .order_by(Customer.name, Customer.id)
            .limit(limit - len(found))
        )
        found.extend(session.scalars(by_phone))
    return found
