"""What a signed-in contact does with tickets: list, submit, follow, reply, confirm, reopen.

Every read goes through the one scope mechanism with the contact as viewer (their
customer's tickets; a group administrator's also the branches'), so another customer's
ticket is NotFound (404). A contact sees the public side only: the description, public
replies, their own side's replies, state changes and shared files — never internal notes,
routing, SLA or escalation data, and never staff usernames. Writes go through the same
services as every channel: `tickets.service.open_ticket` (channel portal),
`customer_reply`, `change_state`, `attachments.add_attachment`. Services flush; the edge
commits.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from kefu.audit.service import record
from kefu.clock import now
from kefu.customers.models import Customer
from kefu.errors import Invalid, NotFound
from kefu.i18n import N_
from kefu.portal.schemas import PortalReply, PortalTicketIn
from kefu.scope import Viewer, get_visible, visible
from kefu.tickets import attachments, fields, policy
from kefu.tickets import queries as ticket_queries
from kefu.tickets import service as tickets
from kefu.tickets.models import Category, Ticket, TicketAttachment, TicketEvent, TicketField
from kefu.tickets.schemas import TicketCreate

SHOWN = ("created", "reply", "customer_reply", "state", "attachment")
CUSTOMER_SIDE = ("created", "customer_reply")
FILTERS = ("open", "resolved", "closed", "all")
# The customer's words for the states (the codes stay English in the database).
STATES = {
    "new": N_("Request received"),
    "open": N_("In progress"),
    "pending": N_("Waiting for your answer"),
    "on_hold": N_("In progress"),
    "resolved": N_("Resolved — please confirm"),
    "closed": N_("Closed"),
}
File = tuple[str, bytes]  # (name, content)


def _contact(viewer: Viewer) -> None:
    if not viewer.is_contact:
        raise NotFound()


def as_html(text: str) -> str:
    """What a contact types is plain text: shown as written, line breaks kept, no markup."""
    return html.escape(text.strip()).replace("\n", "<br>\n")


def requests(session: Session, viewer: Viewer, show: str = "open") -> Select[Any]:
    """The contact's tickets (scoped), by filter: open (incl. new, pending, on hold),
    resolved (awaiting confirmation), closed, or all."""
    _contact(viewer)
    stmt = ticket_queries.tickets(session, viewer)
    if show == "open":
        stmt = stmt.where(Ticket.state.in_(policy.OPEN_STATES))
    elif show in ("resolved", "closed"):
        stmt = stmt.where(Ticket.state == show)
    return stmt


def get_request(
    session: Session, viewer: Viewer, ticket_id: int, for_update: bool = False
) -> Ticket:
    _contact(viewer)
    return get_visible(session, Ticket, ticket_id, viewer, for_update=for_update)


def may_reopen(ticket: Ticket) -> bool:
    """A resolved request the contact may still reopen (within the window)."""
    return ticket.state == "resolved" and policy.may_reopen(ticket.resolved_at, now())


def customers_for(session: Session, viewer: Viewer) -> list[Customer]:
    """Whom the contact may submit for: their customer; a group administrator also the
    branches."""
    _contact(viewer)
    stmt = visible(select(Customer), Customer, viewer).order_by(Customer.path).limit(500)
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class Entry:
    """One item of the customer's view of the timeline."""

    id: int
    at: datetime
    kind: str  # message | state | file
    from_customer: bool
    author: str  # the contact's name for the customer's side; '' for the service team
    body: str  # sanitised HTML
    state_from: str = ""
    state_to: str = ""
    file: TicketAttachment | None = None


def timeline(session: Session, viewer: Viewer, ticket: Ticket) -> list[Entry]:
    """The public timeline, oldest first. Internal events never leave the database."""
    _contact(viewer)
    rows = session.scalars(
        select(TicketEvent)
        .where(
            TicketEvent.ticket_id == ticket.id,
            TicketEvent.public.is_(True),
            TicketEvent.kind.in_(SHOWN),
        )
        .order_by(TicketEvent.id)
    )
    files = {f.id: f for f in shared_files(session, viewer, ticket)}
    out = []
    for e in rows:
        # The customer's side: their messages and the files they uploaded here.
        customer_side = e.kind in CUSTOMER_SIDE or bool(e.data.get("portal"))
        author = e.actor if customer_side else ""
        if e.kind == "state":
            frm, to = str(e.data.get("frm", "")), str(e.data.get("to", ""))
            out.append(Entry(e.id, e.at, "state", False, "", "", frm, to))
        elif e.kind == "attachment":
            f = files.get(int(e.data.get("attachment_id") or 0))
            if f is not None:
                out.append(Entry(e.id, e.at, "file", customer_side, author, "", file=f))
        else:
            if e.kind == "created" and ticket.channel != "portal":
                author = ""  # opened by the service team (phone, visit, …)
            out.append(Entry(e.id, e.at, "message", bool(author), author, e.body))
    return out


def shared_files(session: Session, viewer: Viewer, ticket: Ticket) -> list[TicketAttachment]:
    _contact(viewer)
    return list(
        session.scalars(
            select(TicketAttachment)
            .where(TicketAttachment.ticket_id == ticket.id, TicketAttachment.public.is_(True))
            .order_by(TicketAttachment.id)
        )
    )


def open_file(
    session: Session, viewer: Viewer, ticket_id: int, attachment_id: int
) -> tuple[TicketAttachment, Path]:
    get_request(session, viewer, ticket_id)  # out of scope: 404
    row, path = attachments.open_attachment(session, viewer, ticket_id, attachment_id)
    if not row.public:
        raise NotFound()
    return row, path


def _attach(
    session: Session, viewer: Viewer, ticket: Ticket, files: list[File]
) -> list[TicketAttachment]:
    rows = []
    for name, data in files:
        row = attachments.add_attachment(session, viewer, ticket.id, name, data, public=True)
        _mark_portal(session, ticket, row.id)
        rows.append(row)
    return rows


def share_files(
    session: Session, viewer: Viewer, ticket_id: int, files: list[File]
) -> list[TicketAttachment]:
    """The contact shares files on a request that is not closed (the contact API; the pages
    send files with a reply). The state does not change: a file alone asks nothing."""
    ticket = get_request(session, viewer, ticket_id, for_update=True)
    if ticket.state == "closed":
        raise Invalid.field("file", N_("This request is closed; submit a new one instead."))
    return _attach(session, viewer, ticket, files)


def _mark_portal(session: Session, ticket: Ticket, attachment_id: int) -> None:
    """The file's timeline event says it came from the customer's side."""
    session.flush()
    ev = session.scalars(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "attachment")
        .order_by(TicketEvent.id.desc())
        .limit(1)
    ).first()
    if ev is not None and ev.data.get("attachment_id") == attachment_id:
        ev.data = {**ev.data, "portal": True}


def given(values: dict[str, Any]) -> dict[str, Any]:
    """The custom field values a contact filled in: an empty input is no answer (a
    customer's channel is asked no field, so an empty required one is not an error)."""
    return {
        k: v for k, v in values.items() if not (v is None or (isinstance(v, str) and not v.strip()))
    }


def request_fields(session: Session, viewer: Viewer, category_code: str) -> list[TicketField]:
    """The custom fields a contact may fill for a category (none for an unknown one)."""
    _contact(viewer)
    if not category_code or session.get(Category, category_code) is None:
        return []
    return fields.fields_for(session, category_code)


def submit(session: Session, viewer: Viewer, data: PortalTicketIn, files: list[File]) -> Ticket:
    """A request from the portal, through the one intake of every channel; the category's
    custom fields are checked there (a customer's channel need not fill them)."""
    _contact(viewer)
    customer_id = data.customer_id or viewer.customer_id or -1
    ticket = tickets.open_ticket(
        session,
        viewer,
        TicketCreate(
            customer_id=customer_id,
            # A group administrator filing for a branch is no contact of the branch: the
            # ticket then names no contact; created_by and the audit still name them.
            contact_id=viewer.contact_id if customer_id == viewer.customer_id else None,
            category_code=data.category_code,
            subject=data.subject,
            description=as_html(data.description),
            channel="portal",
            custom_fields=given(data.custom_fields),
        ),
        channel="portal",
    )
    _attach(session, viewer, ticket, files)
    return ticket


def reply(
    session: Session, viewer: Viewer, ticket_id: int, data: PortalReply, files: list[File]
) -> TicketEvent:
    """The contact answers: a pending, on-hold or resolved ticket opens again (a resolved
    one only within the reopening window), and the next-response clock starts."""
    ticket = get_request(session, viewer, ticket_id, for_update=True)
    if ticket.state == "closed":
        raise Invalid.field("body", N_("This request is closed; submit a new one instead."))
    if ticket.state == "resolved" and not policy.may_reopen(ticket.resolved_at, now()):
        raise Invalid.field(
            "body", N_("This request was resolved too long ago; submit a new one instead.")
        )
    row = _customer_reply(session, viewer, ticket, data.body)
    _attach(session, viewer, ticket, files)
    return row


def _customer_reply(session: Session, viewer: Viewer, ticket: Ticket, body: str) -> TicketEvent:
    row = tickets.customer_reply(session, ticket, viewer.username, as_html(body), viewer)
    session.flush()
    record(
        session,
        viewer,
        "ticket.customer_reply",
        "ticket",
        ticket.id,
        {"event_id": {"before": None, "after": row.id}},
    )
    return row


def confirm(session: Session, viewer: Viewer, ticket_id: int) -> Ticket:
    """The contact confirms that a resolved request is done: it closes."""
    ticket = get_request(session, viewer, ticket_id, for_update=True)
    if ticket.state != "resolved":
        raise Invalid.field("state", N_("Only a resolved request can be confirmed."))
    tickets.change_state(session, viewer, ticket, "closed", "confirmed by the customer")
    ticket.updated_at = now()
    session.flush()
    return ticket


def reopen(session: Session, viewer: Viewer, ticket_id: int, data: PortalReply) -> Ticket:
    """The contact says a resolved request is not done, within the reopening window; their
    reason becomes a reply, so the team sees why."""
    ticket = get_request(session, viewer, ticket_id, for_update=True)
    if ticket.state != "resolved":
        raise Invalid.field("state", N_("Only a resolved request can be reopened."))
    if not policy.may_reopen(ticket.resolved_at, now()):
        raise Invalid.field(
            "body", N_("This request was resolved too long ago; submit a new one instead.")
        )
    _customer_reply(session, viewer, ticket, data.body)
    return ticket
