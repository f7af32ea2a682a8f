"""Collaborators (协作人): staff who help on a ticket without owning it, from any unit. They
see the ticket through the scope's "explicitly assigned" branch (Ticket.__scope__: the
ticket's id among the viewer's ticket_collaborators rows), are told through the outbox when
added, and each change is a timeline event and an audit row."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kefu.audit.service import record
from kefu.errors import Forbidden, Invalid, NotFound
from kefu.i18n import N_
from kefu.notifications.service import notify
from kefu.scope import Viewer
from kefu.staff.models import Staff
from kefu.tickets.models import Ticket, TicketCollaborator
from kefu.tickets.service import event, get_ticket


def _ids(session: Session, ticket_id: int) -> list[int]:
    return list(
        session.scalars(
            select(TicketCollaborator.staff_id)
            .where(TicketCollaborator.ticket_id == ticket_id)
            .order_by(TicketCollaborator.staff_id)
        )
    )


def collaborators(session: Session, viewer: Viewer, ticket_id: int) -> list[Staff]:
    ticket = get_ticket(session, viewer, ticket_id)
    return list(
        session.scalars(
            select(Staff)
            .join(TicketCollaborator, TicketCollaborator.staff_id == Staff.id)
            .where(TicketCollaborator.ticket_id == ticket.id)
            .order_by(Staff.display_name, Staff.id)
        )
    )


def _may_change(viewer: Viewer) -> None:
    if not viewer.has_role("agent", "supervisor", "manager"):
        raise Forbidden(N_("Only agents, supervisors and managers change collaborators."))


def add_collaborator(session: Session, viewer: Viewer, ticket_id: int, staff_id: int) -> Staff:
    # Visibility before permission (404, not 403); the row lock serialises two adds.
    ticket = get_ticket(session, viewer, ticket_id, for_update=True)
    _may_change(viewer)
    person = session.scalars(
        select(Staff).where(Staff.id == staff_id, Staff.is_active.is_(True))
    ).first()
    if person is None:
        raise Invalid.field("staff_id", N_("No such active staff member."))
    before = _ids(session, ticket.id)
    if person.id in before:
        raise Invalid.field(
            "staff_id",
            N_("{person} collaborates on this ticket already."),
            person=person.display_name,
        )
    session.add(TicketCollaborator(ticket_id=ticket.id, staff_id=person.id))
    row = event(
        session, ticket, "collaborator", viewer.username, staff_id=person.id, action="added"
    )
    session.flush()
    record(
        session,
        viewer,
        "ticket.collaborator",
        "ticket",
        ticket.id,
        {"collaborators": {"before": before, "after": sorted([*before, person.id])}},
    )
    notify(
        session,
        "ticket.collaborator_added",
        f"staff:{person.id}",
        {
            "ticket_id": ticket.id,
            "number": ticket.number,
            "subject": ticket.subject,
            "by": viewer.username,
        },
        f"ticket.collaborator_added:{ticket.id}:{person.id}:{row.id}",
    )
    return person


def remove_collaborator(session: Session, viewer: Viewer, ticket_id: int, staff_id: int) -> None:
    ticket = get_ticket(session, viewer, ticket_id, for_update=True)
    _may_change(viewer)
    before = _ids(session, ticket.id)
    if staff_id not in before:
        raise NotFound(params={"staff_id": staff_id})
    session.execute(
        delete(TicketCollaborator).where(
            TicketCollaborator.ticket_id == ticket.id, TicketCollaborator.staff_id == staff_id
        )
    )
    event(session, ticket, "collaborator", viewer.username, staff_id=staff_id, action="removed")
    record(
        session,
        viewer,
        "ticket.collaborator",
        "ticket",
        ticket.id,
        {"collaborators": {"before": before, "after": [i for i in before if i != staff_id]}},
    )
    session.flush()


def copy_collaborators(session: Session, source: Ticket, target: Ticket) -> list[int]:
    """A merge brings the duplicate's collaborators along (those not there yet)."""
    have = set(_ids(session, target.id))
    added = [i for i in _ids(session, source.id) if i not in have]
    session.add_all(TicketCollaborator(ticket_id=target.id, staff_id=i) for i in added)
    return added
