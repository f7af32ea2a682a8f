"""Bulk actions of the agent console: assign, change state or transfer many tickets, all or
nothing (a transfer is the single-ticket transfer, ticket by ticket, with its rules).

Each ticket is tried in a savepoint of its own, so every failure is found and reported (which
ticket, which field, why: out of scope, the state machine, a stale version); if any fails,
the whole request is refused and the edge rolls everything back. Each ticket that changes
writes its own timeline event and audit row, exactly as the single-ticket actions do.
"""

from __future__ import annotations

from pydantic import ValidationError
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
from kefu.tickets.schemas import BulkAction, TransferIn
from kefu.validation import pydantic_errors

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


def _transfer(data: BulkAction) -> TransferIn:
    """The single-ticket transfer's input, checked by its own schema (the reason)."""
    try:
        return TransferIn.model_validate(
            {
                "version": 0,  # each ticket's own version goes in, ticket by ticket
                "unit_id": data.unit_id,
                "assignee_id": data.assignee_id,
                "reason": data.reason,
            }
        )
    except ValidationError as exc:
        raise Invalid(errors=pydantic_errors(exc.errors())) from exc


def bulk_update(session: Session, viewer: Viewer, data: BulkAction) -> list[Ticket]:
    if not viewer.has_role("agent", "supervisor", "manager"):
        raise Forbidden()
    person = None
    move = None
    if data.action == "assign":
        person = _person(session, viewer, data.assignee_id)
    elif data.action == "transfer":
        # The target's rules are the single transfer's, checked once before any ticket.
        move = _transfer(data)
        service.transfer_target(session, move)
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
                if move is not None:
                    # The single-ticket transfer, as is: scope, version, event, audit, notice.
                    mine = move.model_copy(update={"version": item.version})
                    ticket = service.transfer(session, viewer, item.id, mine)
                else:
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
