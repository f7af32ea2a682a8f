"""From the outbox's recipient (`staff:12`, `unit_head:5`, `unit:5`, `customer:9`) to
concrete recipients, each with the channels that reach them for the event's type.

- `staff:S`: that staff member, when active;
- `unit_head:U`: the active supervisors of unit U (the escalation sweep writes it when a
  unit has none at the time of the step, so a supervisor named later still hears of it);
- `unit:U`: the active agents, supervisors and managers of unit U;
- `customer:C`: the customer (channels of the "customer" audience, e.g. email, find the
  contacts);
- `contact:K`: one contact of a customer (kind "contact", the same channels).

A staff member's channels for an event type are the registered channels of the "staff"
audience that their preferences enable, or, without a preference, that are on by default
for the type. Everything is read batch-wise: a few queries per fan-out batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from kefu.channels.base import Channel, Event, PlannedEvent, Recipient, channels, default_on
from kefu.channels.models import NotificationPreference
from kefu.customers.models import Contact, Customer
from kefu.staff.models import Staff, StaffRole
from kefu.tickets.models import Ticket

UNIT_ROLES = ("agent", "supervisor", "manager")


def parse(recipient: str) -> tuple[str, int] | None:
    kind, _, ident = recipient.partition(":")
    if not ident.isdigit():
        return None
    return kind, int(ident)


def staff_channels(
    registry: dict[str, Channel], prefs: dict[tuple[int, str, str], bool], staff_id: int, topic: str
) -> frozenset[str]:
    return frozenset(
        name
        for name, ch in registry.items()
        if "staff" in ch.audiences and prefs.get((staff_id, topic, name), default_on(ch, topic))
    )


def resolve(session: Session, events: Sequence[Event]) -> list[PlannedEvent]:
    registry = channels()
    parsed = {e.id: parse(e.recipient) for e in events}
    staff_ids = {p[1] for p in parsed.values() if p and p[0] == "staff"}
    unit_ids = {p[1] for p in parsed.values() if p and p[0] in ("unit", "unit_head")}
    customer_ids = {p[1] for p in parsed.values() if p and p[0] == "customer"}
    contact_ids = {p[1] for p in parsed.values() if p and p[0] == "contact"}

    members: dict[tuple[str, int], list[int]] = defaultdict(list)
    if unit_ids:
        rows = session.execute(
            select(Staff.unit_id, Staff.id, StaffRole.role)
            .join(StaffRole, StaffRole.staff_id == Staff.id)
            .where(Staff.unit_id.in_(unit_ids), Staff.is_active.is_(True))
            .where(StaffRole.role.in_(UNIT_ROLES))
            .order_by(Staff.id)
        ).all()
        for member_unit, sid, role in rows:
            if sid not in members[("unit", member_unit)]:
                members[("unit", member_unit)].append(sid)
            if role == "supervisor":
                members[("unit_head", member_unit)].append(sid)
            staff_ids.add(sid)

    people: dict[int, tuple[str, int]] = {}
    if staff_ids:
        for sid, locale, staff_unit in session.execute(
            select(Staff.id, Staff.locale, Staff.unit_id).where(
                Staff.id.in_(staff_ids), Staff.is_active.is_(True)
            )
        ):
            people[sid] = (locale, staff_unit)

    topics = {e.topic for e in events}
    prefs: dict[tuple[int, str, str], bool] = {}
    if people:
        for p in session.scalars(
            select(NotificationPreference).where(
                NotificationPreference.staff_id.in_(people),
                NotificationPreference.topic.in_(topics),
            )
        ):
            prefs[(p.staff_id, p.topic, p.channel)] = p.enabled

    ticket_ids = {
        int(e.payload["ticket_id"]) for e in events if isinstance(e.payload.get("ticket_id"), int)
    }
    ticket_units: dict[int, int] = {}
    if ticket_ids:
        ticket_units = {
            tid: uid
            for tid, uid in session.execute(
                select(Ticket.id, Ticket.handling_unit_id).where(Ticket.id.in_(ticket_ids))
            )
        }
    customer_units: dict[int, int] = {}
    if customer_ids:
        customer_units = {
            cid: uid
            for cid, uid in session.execute(
                select(Customer.id, Customer.owning_unit_id).where(Customer.id.in_(customer_ids))
            )
        }
    contact_units: dict[int, int] = {}
    if contact_ids:
        contact_units = {
            kid: uid
            for kid, uid in session.execute(
                select(Contact.id, Customer.owning_unit_id)
                .join(Customer, Customer.id == Contact.customer_id)
                .where(Contact.id.in_(contact_ids))
            )
        }
    customer_channels = frozenset(n for n, ch in registry.items() if "customer" in ch.audiences)

    planned = []
    for e in events:
        parsed_recipient = parsed[e.id]
        kind, ident = parsed_recipient if parsed_recipient else ("", 0)
        found: list[Recipient] = []
        unit_id: int | None = None
        ids: list[int] = []
        if kind == "staff":
            ids = [ident]
            unit_id = people[ident][1] if ident in people else None
        elif kind in ("unit", "unit_head"):
            ids = members.get((kind, ident), [])
            unit_id = ident
        elif kind == "customer":
            found.append(Recipient("customer", ident, customer_channels))
            unit_id = customer_units.get(ident)
        elif kind == "contact" and ident in contact_units:
            found.append(Recipient("contact", ident, customer_channels))
            unit_id = contact_units[ident]
        for sid in ids:
            if sid in people:
                locale, home = people[sid]
                chosen = staff_channels(registry, prefs, sid, e.topic)
                found.append(Recipient("staff", sid, chosen, locale, home))
        ticket_id = e.payload.get("ticket_id")
        if kind in ("customer", "contact", "") and isinstance(ticket_id, int):
            # A customer's event concerns the unit that handles the ticket.
            unit_id = ticket_units.get(ticket_id, unit_id)
        planned.append(PlannedEvent(e, tuple(found), unit_id))
    return planned
