"""Merging a duplicate ticket into another of the same customer (合并工单).

The target receives copies of the duplicate's messages (the description, replies, notes,
customer replies) and attachments, marked with where they came from; the duplicate is closed
and points at the target (`merged_into_id`), and both timelines say so. Copies rather than
a read-through: every reader of a timeline — the ticket page, the API, the portal, exports —
sees the target's whole story without knowing about merges, merges of merges need nothing
more, and attachments are stored by content hash, so a copy costs a row, not a file.

Refused: across customers, into a closed ticket, a closed (or already merged) duplicate,
a ticket into itself, a stale version of the duplicate (optimistic locking). Both rows are
locked in id order, so two merges crossing the same pair cannot deadlock.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kefu.audit.service import record
from kefu.clock import now
from kefu.errors import Forbidden, Invalid, NotFound
from kefu.i18n import N_
from kefu.notifications.service import notify
from kefu.scope import Viewer
from kefu.tickets.collaboration import copy_collaborators
from kefu.tickets.models import Ticket, TicketAttachment, TicketEvent
from kefu.tickets.schemas import MergeIn
from kefu.tickets.service import _check_version, _flush, event, get_ticket

MESSAGE_KINDS = ("created", "reply", "note", "customer_reply", "attachment")


def _lock_both(
    session: Session, viewer: Viewer, source_id: int, target_id: int
) -> tuple[Ticket, Ticket]:
    get_ticket(session, viewer, source_id)  # out of scope: 404 before anything else
    locked: dict[int, Ticket] = {}
    for ticket_id in sorted({source_id, target_id}):
        try:
            locked[ticket_id] = get_ticket(session, viewer, ticket_id, for_update=True)
        except NotFound:
            raise Invalid.field("into_id", N_("No such ticket.")) from None
    return locked[source_id], locked[target_id]


def merge_ticket(
    session: Session, viewer: Viewer, source_id: int, data: MergeIn
) -> tuple[Ticket, Ticket]:
    """Merge ticket `source_id` into `data.into_id`; returns (source, target)."""
    if data.into_id == source_id:
        get_ticket(session, viewer, source_id)
        raise Invalid.field("into_id", N_("A ticket cannot be merged into itself."))
    source, target = _lock_both(session, viewer, source_id, data.into_id)
    if not viewer.has_role("agent", "supervisor", "manager"):
        raise Forbidden(N_("Only agents, supervisors and managers merge tickets."))
    _check_version(source, data.version)
    if source.state == "closed":
        raise Invalid.field("into_id", N_("This ticket is closed: it cannot be merged."))
    if target.customer_id != source.customer_id:
        raise Invalid.field(
            "into_id", N_("Only a ticket of the same customer can take this one in.")
        )
    if target.state == "closed":
        raise Invalid.field("into_id", N_("The ticket {number} is closed."), number=target.number)
    at = now()
    # The target's timeline: the merge, then the duplicate's messages and files, marked.
    event(
        session,
        target,
        "merged",
        viewer.username,
        public=True,
        body="",
        merged_from=source.id,
        number=source.number,
        reason=data.reason,
    )
    files = {}
    for a in session.scalars(
        select(TicketAttachment)
        .where(TicketAttachment.ticket_id == source.id)
        .order_by(TicketAttachment.id)
    ):
        copy = TicketAttachment(
            ticket_id=target.id,
            filename=a.filename,
            kind=a.kind,
            content_type=a.content_type,
            size=a.size,
            sha256=a.sha256,
            uploaded_by=a.uploaded_by,
            created_at=a.created_at,
        )
        session.add(copy)
        files[a.id] = copy
    session.flush()
    copied = 0
    for e in session.scalars(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == source.id, TicketEvent.kind.in_(MESSAGE_KINDS))
        .order_by(TicketEvent.id)
    ):
        data_ = {**e.data, "merged_from": source.id, "merged_number": source.number}
        if e.kind == "attachment" and e.data.get("attachment_id") in files:
            data_["attachment_id"] = files[e.data["attachment_id"]].id
        session.add(
            TicketEvent(
                ticket_id=target.id,
                at=e.at,
                kind=e.kind,
                actor=e.actor,
                public=e.public,
                body=e.body,
                data=data_,
            )
        )
        copied += 1
    added = copy_collaborators(session, source, target)
    tags = sorted(set(target.tags or []) | set(source.tags or []))
    if tags != sorted(target.tags or []):
        target.tags = tags
    target.updated_at = at
    # The duplicate: closed, pointing at the target.
    before_state = source.state
    source.state = "closed"
    source.closed_at = at
    source.merged_into_id = target.id
    source.updated_at = at
    event(
        session,
        source,
        "merged",
        viewer.username,
        public=True,
        merged_into=target.id,
        number=target.number,
        reason=data.reason,
    )
    record(
        session,
        viewer,
        "ticket.merge",
        "ticket",
        source.id,
        {
            "merged_into_id": {"before": None, "after": target.id},
            "state": {"before": before_state, "after": "closed"},
        },
    )
    record(
        session,
        viewer,
        "ticket.merge",
        "ticket",
        target.id,
        {
            "merged_from": {"before": None, "after": source.id},
            "copied_messages": {"before": None, "after": copied},
            "copied_attachments": {"before": None, "after": len(files)},
            "collaborators_added": {"before": None, "after": added},
        },
    )
    notify(
        session,
        "ticket.merged",
        f"customer:{source.customer_id}",
        {
            "ticket_id": source.id,
            "number": source.number,
            "into_id": target.id,
            "into_number": target.number,
        },
        f"ticket.merged:{source.id}",
    )
    _flush(session)
    return source, target


def merged_here(session: Session, target: Ticket) -> list[Ticket]:
    """The duplicates merged into `target` (visible through it: the same customer)."""
    return list(
        session.scalars(
            select(Ticket).where(Ticket.merged_into_id == target.id).order_by(Ticket.id)
        )
    )
