"""Bulk actions of the agent console: one action on many tickets, all or nothing.

Each ticket is tried in a savepoint of its own, so every failure is found and reported (which
ticket, which field, why: out of scope, the state machine, a stale version); if any fails,
the whole request is refused and the edge rolls everything back. Each ticket that changes
writes its own timeline event and audit row, exactly as the single-ticket actions do.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kefu.audit.service import record
from kefu.clock import now
from kefu.errors import Conflict, FieldError, Forbidden, Invalid, NotFound
from kefu.i18n import N_
from kefu.notifications.service import notify
from kefu.scope import Viewer, visible
from kefu.staff.models import Staff
from kefu.tickets import service
from kefu.tickets.models import Ticket
from kefu.tickets.schemas import BulkAction

REFUSED = N_("Nothing was changed: {failed} of {total} tickets cannot take this action.")
NO_TICKET = N_("No such ticket.")
TWICE = N_("The same ticket is listed twice.")


def _person(session: Session, viewer: Viewer, staff_id: int | None) -> int:
    """An active staff member the viewer can see (else the field is refused)."""
    found = None
    if staff_id is not None:
        found = session.scalar(
            visible(select(Staff.id), Staff, viewer).where(
                Staff.id == staff_id, Staff.is_active.is_(True)
            )
        )
    if found is None:
        raise Invalid.field("assignee_id", N_("No such active staff member."))
    return found


def assign(session: Session, viewer: Viewer, ticket: Ticket, person: int, reason: str) -> None:
    """Give the ticket to a person (in its timeline, the audit log and their inbox)."""
    if ticket.assignee_id == person:
        return
    before = ticket.assignee_id
    ticket.assignee_id = person
    service.event(
        session, ticket, "assign", viewer.username, assignee_id=person, rule="manual", reason=reason
    )
    record(
        session,
        viewer,
        "ticket.assign",
        "ticket",
        ticket.id,
        {"assignee_id": {"before": before, "after": person}},
    )
    notify(
        session,
        "ticket.assigned",
        f"staff:{person}",
        {"ticket_id": ticket.id, "number": ticket.number},
        f"ticket.assigned:{ticket.id}:{ticket.version}:{person}",
    )


def bulk_update(session: Session, viewer: Viewer, data: BulkAction) -> list[Ticket]:
    if not viewer.has_role("agent", "supervisor", "manager"):
        raise Forbidden()
    person = None
    if data.action == "assign":
        person = _person(session, viewer, data.assignee_id)
    elif data.state is None:
        raise Invalid.field("state", N_("Choose the new state."))
    failures: list[FieldError] = []
    seen: set[int] = set()
    done: list[Ticket] = []
    for i, item in enumerate(data.tickets):
        if item.id in seen:
            failures.append(FieldError(f"tickets.{i}.id", TWICE, {"id": item.id}))
            continue
        seen.add(item.id)
        try:
            with session.begin_nested():
                ticket = service.get_ticket(session, viewer, item.id, for_update=True)
                service._check_version(ticket, item.version)
                if person is not None:
                    assign(session, viewer, ticket, person, data.reason)
                else:
                    assert data.state is not None
                    service.change_state(session, viewer, ticket, data.state, data.reason)
                ticket.updated_at = now()
                service._flush(session)
        except NotFound:
            failures.append(FieldError(f"tickets.{i}.id", NO_TICKET, {"id": item.id}))
        except Conflict as exc:
            failures.append(FieldError(f"tickets.{i}.version", exc.message, {"id": item.id}))
        except Invalid as exc:
            failures += [
                FieldError(f"tickets.{i}.{e.field}", e.message, {**e.params, "id": item.id})
                for e in exc.errors
            ]
        else:
            done.append(ticket)
    if failures:
        stale = any(f.field.endswith(".version") for f in failures)
        failed = len({f.field.split(".")[1] for f in failures})
        params = {"failed": failed, "total": len(data.tickets)}
        raise (Conflict if stale else Invalid)(REFUSED, params=params, errors=failures)
    return done
