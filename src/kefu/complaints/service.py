"""Complaints: registered with their ticket at intake, analysed (cause; a repeat raises
the severity), remedied (compensation above a threshold waits for someone with the
authority), verified; the ticket closes only after that and a reached return visit.
Services flush; the edge commits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from kefu.audit.service import diff, record, snapshot
from kefu.clock import now
from kefu.complaints import policy
from kefu.complaints.models import Complaint, ComplaintCause
from kefu.complaints.schemas import ComplaintUpdate, DecisionIn, VerifyIn
from kefu.config import get_settings
from kefu.errors import Conflict, Invalid
from kefu.i18n import N_
from kefu.notifications.service import notify
from kefu.scope import Viewer, get_visible
from kefu.tickets.models import Ticket, TicketEvent

STALE = N_("Someone else changed this record; reload it and try again.")
FIELDS = (
    "severity",
    "severity_reason",
    "cause_code",
    "repeat_of_id",
    "remedy",
    "compensation",
    "compensation_state",
    "verified_at",
)


def _event(session: Session, complaint: Complaint, actor: str, **data: Any) -> None:
    session.add(
        TicketEvent(
            ticket_id=complaint.ticket_id, at=now(), kind="complaint", actor=actor, data=data
        )
    )


def complaint_values(ticket: Ticket) -> dict[str, Any]:
    """The complaint of a ticket opened in a complaint category, as the columns the intake
    writes with its batch (the model's defaults fill the rest)."""
    return {
        "ticket_id": ticket.id,
        "customer_id": ticket.customer_id,
        "owning_unit_id": ticket.owning_unit_id,
        "severity": policy.PRIORITY_SEVERITY.get(ticket.priority, 1),
        "created_at": now(),
    }


def for_ticket(session: Session, ticket_id: int) -> Complaint | None:
    return session.scalars(select(Complaint).where(Complaint.ticket_id == ticket_id)).first()


def get_complaint(
    session: Session, viewer: Viewer, complaint_id: int, for_update: bool = False
) -> Complaint:
    return get_visible(session, Complaint, complaint_id, viewer, for_update=for_update)


def _check(complaint: Complaint, version: int) -> None:
    if complaint.version != version:
        raise Conflict(STALE)


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict(STALE) from exc


def causes(session: Session) -> list[ComplaintCause]:
    return list(
        session.scalars(
            select(ComplaintCause)
            .where(ComplaintCause.is_active.is_(True))
            .order_by(ComplaintCause.sort_order, ComplaintCause.code)
        )
    )


def _find_repeat(session: Session, complaint: Complaint) -> Complaint | None:
    since = complaint.created_at - timedelta(days=get_settings().complaint_repeat_days)
    return session.scalars(
        select(Complaint)
        .where(
            Complaint.customer_id == complaint.customer_id,
            Complaint.cause_code == complaint.cause_code,
            Complaint.id != complaint.id,
            Complaint.created_at >= since,
            Complaint.created_at <= complaint.created_at,
        )
        .order_by(Complaint.created_at.desc())
        .limit(1)
    ).first()


def update(session: Session, viewer: Viewer, complaint_id: int, data: ComplaintUpdate) -> Complaint:
    complaint = get_complaint(session, viewer, complaint_id, for_update=True)
    _check(complaint, data.version)
    if complaint.verified_at is not None:
        raise Invalid.field("version", N_("This complaint is verified already."))
    before = snapshot(complaint, FIELDS)
    settings = get_settings()
    if data.severity is not None:
        complaint.severity = data.severity
    if data.cause_code is not None and data.cause_code != complaint.cause_code:
        if session.get(ComplaintCause, data.cause_code) is None:
            raise Invalid.field("cause_code", N_("Choose a root cause from the list."))
        complaint.cause_code = data.cause_code
        repeat = _find_repeat(session, complaint)
        if repeat is not None and complaint.repeat_of_id is None:
            complaint.repeat_of_id = repeat.id
            complaint.severity = policy.raised(max(complaint.severity, repeat.severity))
            complaint.severity_reason = "repeat"
    if data.remedy is not None:
        complaint.remedy = data.remedy.strip()
    if "compensation" in data.model_fields_set and data.compensation != complaint.compensation:
        complaint.compensation = data.compensation
        if policy.needs_approval(data.compensation, settings.complaint_compensation_threshold):
            complaint.compensation_state = "pending"
            complaint.compensation_decided_by = complaint.compensation_decided_at = None
            notify(
                session,
                "complaint.compensation",
                f"unit_head:{complaint.owning_unit_id}",
                {"complaint_id": complaint.id, "amount": str(data.compensation)},
                f"complaint.compensation:{complaint.id}:{complaint.version}",
            )
        else:
            complaint.compensation_state = "none" if data.compensation is None else "approved"
            complaint.compensation_decided_by = viewer.username
            complaint.compensation_decided_at = now()
    _flush(session)
    changes = diff(before, snapshot(complaint, FIELDS))
    if changes:
        _event(session, complaint, viewer.username, changed=sorted(changes))
        record(session, viewer, "complaint.update", "complaint", complaint.id, changes)
    return complaint


def decide(session: Session, viewer: Viewer, complaint_id: int, data: DecisionIn) -> Complaint:
    """Approve or reject a pending compensation, within the approver's authority."""
    complaint = get_complaint(session, viewer, complaint_id, for_update=True)
    _check(complaint, data.version)
    if complaint.compensation_state != "pending" or complaint.compensation is None:
        raise Invalid.field("compensation", N_("No compensation waits for a decision."))
    limit = policy.authority(viewer.roles, get_settings().complaint_approval_limits)
    if data.approve and limit is not None and complaint.compensation > limit:
        raise Invalid.field(
            "compensation",
            N_(
                "This compensation is above what you may approve ({limit}); ask someone "
                "with more authority."
            ),
            limit=str(limit),
        )
    before = snapshot(complaint, FIELDS)
    complaint.compensation_state = "approved" if data.approve else "rejected"
    complaint.compensation_decided_by = viewer.username
    complaint.compensation_decided_at = now()
    _flush(session)
    _event(
        session,
        complaint,
        viewer.username,
        compensation=complaint.compensation_state,
        note=data.note,
    )
    record(
        session,
        viewer,
        "complaint.compensation",
        "complaint",
        complaint.id,
        diff(before, snapshot(complaint, FIELDS)),
    )
    return complaint


def verify(session: Session, viewer: Viewer, complaint_id: int, data: VerifyIn) -> Complaint:
    """Someone checks that the remedy worked; the cause must be known by then."""
    complaint = get_complaint(session, viewer, complaint_id, for_update=True)
    _check(complaint, data.version)
    if complaint.verified_at is not None:
        raise Invalid.field("verification", N_("This complaint is verified already."))
    if complaint.cause_code is None:
        raise Invalid.field("cause_code", N_("Set the root cause before verifying."))
    if not complaint.remedy:
        raise Invalid.field("remedy", N_("Record the remedy before verifying."))
    if complaint.compensation_state == "pending":
        raise Invalid.field("compensation", N_("The compensation still waits for approval."))
    before = snapshot(complaint, FIELDS)
    complaint.verified_at = now()
    complaint.verified_by = viewer.username
    complaint.verification = data.verification.strip()
    _flush(session)
    _event(session, complaint, viewer.username, verified=True)
    record(
        session,
        viewer,
        "complaint.verify",
        "complaint",
        complaint.id,
        diff(before, snapshot(complaint, FIELDS)),
    )
    return complaint


def close_blocker(session: Session, ticket_id: int) -> str | None:
    """Why a complaint's ticket may not close yet (a msgid), or None."""
    complaint = for_ticket(session, ticket_id)
    if complaint is not None and complaint.verified_at is None:
        return N_("A complaint closes only after its remedy is verified.")
    return None
