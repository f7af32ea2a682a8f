"""Tickets: the one intake service every channel calls, routing, SLA facts, the state
machine, messages and transfers. Services flush; the edge commits."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import nh3
from sqlalchemy import String, and_, cast, func, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.exc import StaleDataError

from kefu import cache
from kefu.audit.models import AuditEntry
from kefu.audit.service import entry_values, record
from kefu.clock import now
from kefu.complaints import service as complaints
from kefu.complaints.models import Complaint
from kefu.customers.models import Contact, Customer
from kefu.db import insert_rows, insert_with_ids, padded
from kefu.errors import Conflict, DomainError, Forbidden, Invalid
from kefu.i18n import N_
from kefu.notifications.models import OutboxMessage
from kefu.notifications.service import message_values, notify
from kefu.scope import Viewer, condition, get_visible
from kefu.service_levels import service as service_levels
from kefu.service_levels.models import ServiceLevel, ServiceLevelVersion
from kefu.service_levels.service import targets_for
from kefu.sla import service as sla
from kefu.staff.models import Staff
from kefu.tickets import escalation, fields, policy
from kefu.tickets.models import Category, Ticket, TicketEvent, TicketFieldValue
from kefu.tickets.routing import (
    Route,
    least_loaded_agent,
    read_agent_loads,
    read_ahead,
    route,
)
from kefu.tickets.schemas import MessageIn, TicketCreate, TicketUpdate, TransferIn
from kefu.units.models import Unit
from kefu.visits import service as visits

DEFAULT_LEVEL = "1A"


def clean_html(body: str) -> str:
    """Message bodies keep safe formatting only (no scripts, no event handlers)."""
    return nh3.clean(body)


def clean_tags(tags: list[str]) -> list[str]:
    """Tags as stored: trimmed, lowercase, without duplicates, sorted; plain words only."""
    out = set()
    for tag in tags:
        tag = " ".join(tag.split()).lower()
        if not tag:
            continue
        if re.search(r"[<>,;\"\\]", tag) or any(ord(c) < 32 for c in tag):
            raise Invalid.field("tags", N_("A tag is a word or two, without , ; < > or quotes."))
        out.add(tag)
    return sorted(out)


def _plain(field: str, value: str) -> str:
    """Subjects and the like are plain text: markup is refused, not silently eaten."""
    if re.search(r"<\s*[A-Za-z!/?]", value):
        raise Invalid.field(field, N_("Plain text only: markup is not allowed here."))
    return value


def event(
    session: Session,
    ticket: Ticket,
    kind: str,
    actor: str,
    *,
    body: str = "",
    public: bool = False,
    **data: Any,
) -> TicketEvent:
    row = TicketEvent(**event_values(ticket, kind, actor, body=body, public=public, **data))
    session.add(row)
    return row


def event_values(
    ticket: Ticket, kind: str, actor: str, *, body: str = "", public: bool = False, **data: Any
) -> dict[str, Any]:
    """The columns of a timeline event (`event` adds it; a batch writes many at once)."""
    return {
        "ticket_id": ticket.id,
        "at": now(),
        "kind": kind,
        "actor": actor,
        "public": public,
        "body": body,
        "data": data,
    }


# --- intake ---------------------------------------------------------------------------------


@dataclass
class Intake:
    """One request to open a ticket, from any channel."""

    viewer: Viewer
    data: TicketCreate
    channel: str | None = None
    idempotency_key: str | None = None  # a channel's own key (a mail's Message-ID, say)


@dataclass
class _Plan:
    """A checked intake, ready to be written."""

    intake: Intake
    ticket: Ticket
    customer: Customer
    category: Category
    decision: Route
    custom: fields.Cleaned


def _scope_key(viewer: Viewer) -> Viewer:
    """Viewers that see the same customers (the request's id and address aside)."""
    return replace(viewer, request_id=None, remote_addr=None)


# Made once: an alias builds proxies of all its columns when first used (0.5 ms a time).
_MANAGER = aliased(Staff, name="manager")


def _intake_facts(
    session: Session, intakes: list[Intake]
) -> tuple[dict[tuple[Viewer, int], Any], dict[int, int]]:
    """For each viewer, the customers it names that it sees, with their unit's path and the
    current version of their service level, and {contact id: customer id} for the contacts
    named that belong to them: one query per viewer (usually one in all), which also brings
    the configuration stamp (kefu.cache)."""
    wanted: dict[Viewer, set[int]] = {}
    for intake in intakes:
        wanted.setdefault(_scope_key(intake.viewer), set()).add(intake.data.customer_id)
    named = {i.data.contact_id for i in intakes if i.data.contact_id is not None}
    found: dict[tuple[Viewer, int], Any] = {}
    contacts: dict[int, int] = {}
    manager = _MANAGER
    for viewer, ids in wanted.items():
        columns: list[Any] = [
            Customer,
            Unit.path,
            ServiceLevel.current_version_id,
            manager.unit_id,
            cache.stamp_column(),
        ]
        if named:  # the named contacts that are this customer's, as "12,15"
            columns.append(
                select(func.aggregate_strings(cast(Contact.id, String), ","))
                .where(Contact.customer_id == Customer.id, Contact.id.in_(padded(named)))
                .scalar_subquery()
            )
        rows = session.execute(
            select(*columns)
            .join(Unit, Unit.id == Customer.owning_unit_id)
            .outerjoin(
                ServiceLevel,
                ServiceLevel.code == func.coalesce(Customer.service_level, DEFAULT_LEVEL),
            )
            # Where the account manager works, if active (routing asks).
            .outerjoin(
                manager,
                and_(manager.id == Customer.account_manager_id, manager.is_active.is_(True)),
            )
            .where(Customer.id.in_(padded(ids)), condition(Customer, viewer))
        )
        memo = cache.memo(session)
        for customer, path, version_id, manager_unit, stamp, *theirs in rows:
            cache.use_stamp(session, stamp)
            found[(viewer, customer.id)] = (customer, path, version_id)
            if memo is not None and customer.account_manager_id is not None:
                memo.setdefault(("manager_unit", customer.account_manager_id), manager_unit)
            for contact_id in (theirs[0] or "").split(",") if theirs else ():
                if contact_id:
                    contacts[int(contact_id)] = customer.id
    return found, contacts


def _categories(session: Session) -> dict[str, Category]:
    return cache.configuration(
        session,
        "categories",
        lambda: {c.code: c for c in session.scalars(select(Category))},
    )


def find_by_key(session: Session, key: str) -> Ticket | None:
    return session.scalars(select(Ticket).where(Ticket.idempotency_key == key)).first()


def _plan(session: Session, intake: Intake, facts: Any, contacts: dict[int, int]) -> _Plan:
    """Check one intake and work out its ticket (routing, SLA due times); writes nothing,
    so a bad value leaves no trace."""
    viewer, data = intake.viewer, intake.data
    hit = facts.get((_scope_key(viewer), data.customer_id))
    if hit is None:
        raise Invalid.field("customer_id", N_("No such customer."))
    customer, owning_path, version_id = hit
    if data.contact_id is not None and contacts.get(data.contact_id) != customer.id:
        raise Invalid.field("contact_id", N_("This contact does not belong to the customer."))
    category = _categories(session).get(data.category_code)
    if category is None or not category.is_active:
        raise Invalid.field("category_code", N_("Unknown category."))
    subject = _plain("subject", data.subject)
    tags = clean_tags(data.tags)
    channel = intake.channel or data.channel or "api"
    # Customers' channels (portal, email) are not asked for the fields: staff fill the
    # required ones.
    by_customer = channel in fields.CUSTOMER_CHANNELS
    custom = fields.clean(session, category.code, data.custom_fields, require=not by_customer)
    at = now()
    decision = route(session, customer, category, data.site_region_code, priority=data.priority)
    terms = service_levels.terms(session, version_id) if version_id is not None else None
    ticket = Ticket(
        customer_id=customer.id,
        contact_id=data.contact_id,
        channel=channel,
        category_code=category.code,
        priority=data.priority,
        subject=subject,
        description=clean_html(data.description),
        site_region_code=data.site_region_code,
        owning_unit_id=customer.owning_unit_id,
        handling_unit_id=decision.handling_unit_id,
        assignee_id=decision.assignee_id,
        state="new",
        tags=tags,
        custom_fields=dict(custom.values),  # the JSON read copy, inserted with the row
        service_level=customer.service_level or DEFAULT_LEVEL,
        service_level_version_id=terms.version_id if terms else None,
        created_by=viewer.username,
        idempotency_key=intake.idempotency_key,
        created_at=at,
        updated_at=at,
    )
    target = terms.target(data.priority, category.code) if terms else None
    if terms is not None and target is not None:
        # One calendar look-up for the four instants.
        (
            ticket.first_response_due,
            ticket.resolution_due,
            ticket.first_response_warn_at,
            ticket.resolution_warn_at,
        ) = sla.due_times(
            session,
            decision.handling_unit_id,
            at,
            [
                target.first_response,
                target.resolution,
                escalation.warn_minutes(target.first_response),
                escalation.warn_minutes(target.resolution),
            ],
            terms.is_24x7,
            path=owning_path if decision.handling_unit_id == customer.owning_unit_id else None,
        )
    return _Plan(intake, ticket, customer, category, decision, custom)


def _rows_of(plan: _Plan, rows: dict[type, list[dict[str, Any]]]) -> None:
    """What goes with a new ticket (its id known), as plain rows by model for the batch to
    write together (`rows`): typed field values, timeline, audit, notifications and the
    complaint. Nobody reads them back in the intake's transaction."""
    ticket, decision, viewer = plan.ticket, plan.decision, plan.intake.viewer
    if plan.custom.values:
        rows.setdefault(TicketFieldValue, []).extend(fields.new_value_rows(ticket.id, plan.custom))
    events = rows.setdefault(TicketEvent, [])
    events.append(
        event_values(
            ticket,
            "created",
            viewer.username,
            public=True,
            body=ticket.description,
            channel=ticket.channel,
        )
    )
    events.append(
        event_values(
            ticket,
            "route",
            "system",
            unit_id=decision.handling_unit_id,
            rule=decision.rule,
            rule_id=decision.rule_id,
            linked=decision.handling_unit_id != ticket.owning_unit_id,
        )
    )
    if decision.assignee_id is not None:
        events.append(
            event_values(
                ticket,
                "assign",
                "system",
                assignee_id=decision.assignee_id,
                rule=decision.assign_rule,
            )
        )
    rows.setdefault(AuditEntry, []).append(
        entry_values(
            viewer,
            "ticket.create",
            "ticket",
            ticket.id,
            {
                "customer_id": {"before": None, "after": plan.customer.id},
                "category_code": {"before": None, "after": plan.category.code},
                "handling_unit_id": {"before": None, "after": decision.handling_unit_id},
                "custom_fields": {"before": None, "after": ticket.custom_fields},
            },
        )
    )
    payload = {"ticket_id": ticket.id, "number": ticket.number, "subject": ticket.subject}
    target_recipient = (
        f"staff:{decision.assignee_id}"
        if decision.assignee_id
        else f"unit:{decision.handling_unit_id}"
    )
    # The ticket is new, so are keys naming it: no need to look for them first.
    messages = rows.setdefault(OutboxMessage, [])
    messages.append(
        message_values("ticket.created", target_recipient, payload, f"ticket.created:{ticket.id}")
    )
    if decision.handling_unit_id != ticket.owning_unit_id:
        messages.append(
            message_values(
                "ticket.linked",
                f"unit:{ticket.owning_unit_id}",
                payload,
                f"ticket.linked:{ticket.id}:{decision.handling_unit_id}",
            )
        )
    if plan.category.is_complaint:
        rows.setdefault(Complaint, []).append(complaints.complaint_values(ticket))


def open_tickets(session: Session, intakes: list[Intake]) -> list[Ticket | DomainError]:
    """The intake of every channel: portal, email, API, phone, walk-in, visit.

    Many intakes in the caller's transaction, answered in their order: each is checked on
    its own (a bad one gets its error and writes nothing), the good ones are written
    together — one INSERT per table for the lot — and what every intake asks alike (the
    routing rules, a unit's calendar, a category's fields, the agents' loads, which grow as
    the batch assigns) is read once. A channel's key already taken answers with its ticket."""
    results: list[Ticket | DomainError | None] = [None] * len(intakes)
    with cache.reads_once(session):
        keys = [i.idempotency_key for i in intakes if i.idempotency_key is not None]
        known = (
            {
                t.idempotency_key: t
                for t in session.scalars(
                    select(Ticket).where(Ticket.idempotency_key.in_(padded(keys)))
                )
            }
            if keys
            else {}
        )
        facts, contacts = _intake_facts(session, intakes)
        # What routing and the SLA will ask, for all at once.
        owning = {customer.owning_unit_id: path for customer, path, _ in facts.values()}
        if len(intakes) > 1:
            units = read_ahead(
                session,
                owning,
                {i.data.site_region_code for i in intakes if i.data.site_region_code},
                {c.account_manager_id for c, _, _ in facts.values() if c.account_manager_id},
            )
            read_agent_loads(session, sorted(units))
            sla.read_calendar_refs(session, units, owning)
        plans: list[tuple[int, _Plan]] = []
        taken: dict[str, int] = {}  # key -> index of the intake in this batch that has it
        for index, intake in enumerate(intakes):
            key = intake.idempotency_key
            if key is not None and key in known:
                results[index] = known[key]
                continue
            if key is not None and key in taken:
                continue  # answered below with the ticket of the first intake of the key
            try:
                plans.append((index, _plan(session, intake, facts, contacts)))
            except DomainError as exc:
                results[index] = exc
                continue
            if key is not None:
                taken[key] = index
        if plans:
            insert_with_ids(session, [plan.ticket for _, plan in plans])
            rows: dict[type, list[dict[str, Any]]] = {}
            for index, plan in plans:
                _rows_of(plan, rows)
                results[index] = plan.ticket
            for cls, values in rows.items():
                insert_rows(session, cls, values)
            session.flush()  # the tickets as returned are the tickets as stored
        for index, intake in enumerate(intakes):
            if results[index] is None:  # a second intake of a key taken in this batch
                results[index] = results[taken[intake.idempotency_key or ""]]
    return results  # type: ignore[return-value]


def open_ticket(
    session: Session,
    viewer: Viewer,
    data: TicketCreate,
    *,
    channel: str | None = None,
    idempotency_key: str | None = None,
) -> Ticket:
    """One intake (see `open_tickets`); a bad one raises its error."""
    (result,) = open_tickets(session, [Intake(viewer, data, channel, idempotency_key)])
    if isinstance(result, DomainError):
        raise result
    return result


# --- changes --------------------------------------------------------------------------------


def get_ticket(
    session: Session, viewer: Viewer, ticket_id: int, for_update: bool = False
) -> Ticket:
    return get_visible(session, Ticket, ticket_id, viewer, for_update=for_update)


def _check_version(ticket: Ticket, expected: int) -> None:
    if ticket.version != expected:
        raise Conflict(
            N_("Someone else changed this ticket meanwhile; reload it and try again."),
            params={"version": ticket.version},
        )


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict(
            N_("Someone else changed this ticket meanwhile; reload it and try again.")
        ) from exc


def _version(session: Session, ticket: Ticket) -> ServiceLevelVersion | None:
    if ticket.service_level_version_id is None:
        return None
    return session.get(ServiceLevelVersion, ticket.service_level_version_id)


def _pauses(state: str, version: ServiceLevelVersion | None) -> bool:
    return state == "pending" or (state == "on_hold" and bool(version and version.pause_on_hold))


def _resume(session: Session, ticket: Ticket, at: datetime) -> None:
    """Leaving a pause: the due times move by the business time the pause took."""
    if ticket.paused_at is None:
        return
    version = _version(session, ticket)
    always = bool(version and version.is_24x7)
    start = ticket.paused_at
    for name in (
        "first_response_due",
        "next_response_due",
        "resolution_due",
        "first_response_warn_at",
        "next_response_warn_at",
        "resolution_warn_at",
    ):
        old = getattr(ticket, name)
        if (
            old is None
            or old <= start
            or (name.startswith("first_response") and ticket.first_response_at)
        ):
            continue
        left = sla.minutes_between(session, ticket.handling_unit_id, start, old, always)
        setattr(ticket, name, sla.due(session, ticket.handling_unit_id, at, left, always))
    ticket.paused_minutes += sla.minutes_between(
        session, ticket.handling_unit_id, start, at, always
    )
    ticket.paused_at = None


def _is_complaint(session: Session, ticket: Ticket) -> bool:
    return bool(
        session.scalar(select(Category.is_complaint).where(Category.code == ticket.category_code))
    )


def change_state(
    session: Session, viewer: Viewer, ticket: Ticket, to: str, reason: str = ""
) -> None:
    at = now()
    frm = ticket.state
    if to == frm:
        return
    if not policy.may_move(frm, to):
        raise Invalid.field("state", N_("A ticket cannot go from {frm} to {to}."), frm=frm, to=to)
    if frm == "resolved" and to == "open" and not policy.may_reopen(ticket.resolved_at, at):
        raise Invalid.field("state", N_("Too late to reopen: open a new ticket instead."))
    version = _version(session, ticket)
    if _pauses(frm, version) and not _pauses(to, version):
        _resume(session, ticket, at)
    if _pauses(to, version) and not _pauses(frm, version):
        ticket.paused_at = at
    if to == "resolved":
        ticket.resolved_at = at
        always = bool(version and version.is_24x7)
        ticket.business_minutes_used = max(
            0.0,
            sla.minutes_between(session, ticket.handling_unit_id, ticket.created_at, at, always)
            - ticket.paused_minutes,
        )
        ticket.breached_resolution = bool(ticket.resolution_due and at > ticket.resolution_due)
    if frm == "resolved" and to == "open":
        ticket.resolved_at = None
        visits.cancel_for_ticket(session, ticket.id, viewer.username)
    if to == "closed":
        if _is_complaint(session, ticket):
            blocker = complaints.close_blocker(session, ticket.id)
            if blocker:
                raise Invalid.field("state", blocker)
            if not visits.closes_complaint(session, ticket.id):
                raise Invalid.field(
                    "state",
                    N_("A complaint closes only after a return visit that reached the customer."),
                )
        ticket.closed_at = at
    ticket.state = to
    event(session, ticket, "state", viewer.username, public=True, frm=frm, to=to, reason=reason)
    record(
        session,
        viewer,
        "ticket.state",
        "ticket",
        ticket.id,
        {"state": {"before": frm, "after": to}},
    )
    if to == "resolved":
        visits.schedule_after_resolution(session, ticket, version, at)
        notify(
            session,
            "ticket.resolved",
            f"customer:{ticket.customer_id}",
            {"ticket_id": ticket.id, "number": ticket.number},
            f"ticket.resolved:{ticket.id}:{at.isoformat()}",
        )


def update_ticket(session: Session, viewer: Viewer, ticket_id: int, data: TicketUpdate) -> Ticket:
    ticket = get_ticket(session, viewer, ticket_id, for_update=True)
    _check_version(ticket, data.version)
    changes = data.model_dump(exclude_unset=True)
    # Every check before the first write: nothing half-done when one fails.
    custom = None
    if data.custom_fields:
        custom = fields.clean(
            session, ticket.category_code, data.custom_fields, current=ticket.custom_fields
        )
    if changes.get("subject"):
        _plain("subject", changes["subject"])
    if data.tags is not None:
        changes["tags"] = clean_tags(data.tags)
    changed: list[str] = []
    if changes.get("state") and changes["state"] != ticket.state:
        changed.append("state")
    if changes.get("state"):
        change_state(session, viewer, ticket, changes["state"], data.reason)
    for name in ("priority", "subject", "tags"):
        value = changes.get(name)
        if value is not None and value != getattr(ticket, name):
            before = getattr(ticket, name)
            changed.append(name)
            setattr(ticket, name, value)
            event(session, ticket, "field", viewer.username, field=name, before=before, after=value)
            record(
                session,
                viewer,
                "ticket.update",
                "ticket",
                ticket.id,
                {name: {"before": before, "after": value}},
            )
    if custom is not None:
        _write_custom(session, viewer, ticket, custom)
        changed.append("custom_fields")
    ticket.updated_at = now()
    _flush(session)
    if changed:
        # For integrations (webhooks); people hear of the changes that concern them.
        notify(
            session,
            "ticket.updated",
            f"staff:{ticket.assignee_id}"
            if ticket.assignee_id
            else f"unit:{ticket.handling_unit_id}",
            {
                "ticket_id": ticket.id,
                "number": ticket.number,
                "state": ticket.state,
                "priority": ticket.priority,
                "changed": changed,
                "by": viewer.username,
            },
            f"ticket.updated:{ticket.id}:{ticket.version}",
        )
    return ticket


def _write_custom(session: Session, viewer: Viewer, ticket: Ticket, custom: fields.Cleaned) -> None:
    diff = fields.write_values(session, ticket, custom)
    if diff:
        event(session, ticket, "custom_fields", viewer.username, changes=diff)
        record(
            session,
            viewer,
            "ticket.custom_fields",
            "ticket",
            ticket.id,
            {f"custom_fields.{k}": v for k, v in diff.items()},
        )


def add_message(session: Session, viewer: Viewer, ticket_id: int, data: MessageIn) -> TicketEvent:
    """An agent's public reply (to the customer) or internal note."""
    ticket = get_ticket(session, viewer, ticket_id, for_update=True)
    if ticket.state == "closed":
        raise Invalid.field("body", N_("The ticket is closed."))
    at = now()
    body = clean_html(data.body)
    row = event(
        session,
        ticket,
        "note" if data.internal else "reply",
        viewer.username,
        body=body,
        public=not data.internal,
    )
    if not data.internal:
        if ticket.first_response_at is None:
            ticket.first_response_at = at
            ticket.breached_first_response = bool(
                ticket.first_response_due and at > ticket.first_response_due
            )
        ticket.next_response_due = ticket.next_response_warn_at = None
        if ticket.state == "new":
            change_state(session, viewer, ticket, "open")
        session.flush()  # the reply's id, for the channels that carry its text (email)
        notify(
            session,
            "ticket.reply",
            f"customer:{ticket.customer_id}",
            {"ticket_id": ticket.id, "number": ticket.number, "event_id": row.id},
            f"ticket.reply:{ticket.id}:{at.isoformat()}",
        )
    ticket.updated_at = at
    _flush(session)
    return row


def customer_reply(
    session: Session, ticket: Ticket, author: str, body: str, viewer: Viewer | None = None
) -> TicketEvent:
    """A reply from the customer (portal, email): reopens pending or resolved tickets and
    starts the next-response clock. `viewer` is who replied when known (a signed-in
    contact), so the audit row of the state change names them; the caller has checked they
    may see the ticket and writes the reply's own audit row (`ticket.customer_reply`)."""
    at = now()
    row = event(session, ticket, "customer_reply", author, body=clean_html(body), public=True)
    system = viewer or Viewer(
        staff_id=None,
        username=author,
        unit_id=None,
        unit_path=None,
        roles=frozenset({"admin"}),
        channel="portal",
    )
    if ticket.state in ("pending", "resolved", "on_hold"):
        change_state(session, system, ticket, "open", "customer replied")
    version = _version(session, ticket)
    if version is not None and ticket.first_response_at is not None:
        target = targets_for(session, version.id, ticket.priority, ticket.category_code)
        if target is not None:
            ticket.next_response_due = sla.due(
                session, ticket.handling_unit_id, at, target.next_response_minutes, version.is_24x7
            )
            ticket.next_response_warn_at = escalation.warn_instant(
                session, ticket.handling_unit_id, at, target.next_response_minutes, version.is_24x7
            )
            # A new wait for an answer: a ladder of its own.
            ticket.next_response_cycle += 1
            ticket.next_response_escalation = 0
    ticket.updated_at = at
    _flush(session)
    return row


def transfer_target(session: Session, data: TransferIn) -> tuple[Unit | None, int | None]:
    """Where a transfer goes: an active unit and/or an active person (one at least). The
    rules of every transfer, one ticket or many (bulk checks them once, before any ticket)."""
    if data.unit_id is None and data.assignee_id is None:
        raise Invalid.field("unit_id", N_("Name a unit or a person to transfer to."))
    unit = None
    if data.unit_id is not None:
        unit = session.get(Unit, data.unit_id)
        if unit is None or not unit.is_active:
            raise Invalid.field("unit_id", N_("No such unit."))
    person = None
    if data.assignee_id is not None:
        person = session.scalar(
            select(Staff.id).where(Staff.id == data.assignee_id, Staff.is_active.is_(True))
        )
        if person is None:
            raise Invalid.field("assignee_id", N_("No such active staff member."))
    return unit, person


def transfer(session: Session, viewer: Viewer, ticket_id: int, data: TransferIn) -> Ticket:
    """Move a ticket to another unit and/or person, with a reason (recorded)."""
    ticket = get_ticket(session, viewer, ticket_id, for_update=True)
    _check_version(ticket, data.version)
    if not viewer.has_role("agent", "supervisor", "manager"):
        raise Forbidden()
    unit, person = transfer_target(session, data)
    # One UPDATE of the ticket (one version step): the reads below must not flush it early.
    with session.no_autoflush:
        if unit is not None:
            before = ticket.handling_unit_id
            ticket.handling_unit_id = unit.id
            if data.assignee_id is None:
                ticket.assignee_id = least_loaded_agent(session, unit.id)
            event(
                session,
                ticket,
                "route",
                viewer.username,
                unit_id=unit.id,
                rule="manual",
                reason=data.reason,
                linked=unit.id != ticket.owning_unit_id,
                previous=before,
            )
            notify(
                session,
                "ticket.transferred",
                f"unit:{unit.id}",
                {"ticket_id": ticket.id, "number": ticket.number, "reason": data.reason},
                f"ticket.transferred:{ticket.id}:{ticket.version}:{unit.id}",
            )
        if person is not None:
            ticket.assignee_id = person
            event(
                session,
                ticket,
                "assign",
                viewer.username,
                assignee_id=person,
                rule="manual",
                reason=data.reason,
            )
        record(
            session,
            viewer,
            "ticket.transfer",
            "ticket",
            ticket.id,
            {
                "handling_unit_id": {"before": None, "after": ticket.handling_unit_id},
                "assignee_id": {"before": None, "after": ticket.assignee_id},
                "reason": {"before": None, "after": data.reason},
            },
        )
        ticket.updated_at = now()
    _flush(session)
    return ticket


def events(session: Session, viewer: Viewer, ticket_id: int) -> Any:
    ticket = get_ticket(session, viewer, ticket_id)
    return select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
