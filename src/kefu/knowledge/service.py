"""Standard phrases (规范用语): the library (personal, unit, global) and filling a phrase's
placeholders for one ticket. Services flush; the edge commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from kefu.audit.service import record
from kefu.clock import now
from kefu.customers.models import Contact, Customer
from kefu.errors import Conflict, Forbidden, Invalid
from kefu.i18n import N_, format_datetime
from kefu.knowledge import policy
from kefu.knowledge.models import Phrase
from kefu.knowledge.schemas import PhraseCreate, PhraseUpdate
from kefu.scope import Viewer, get_visible, visible
from kefu.staff.models import Staff
from kefu.tickets.models import Ticket, shared_with_me
from kefu.units.models import Unit

UNIT_ROLES = ("supervisor", "manager")  # and admins
STALE = N_("Someone else changed this phrase meanwhile; reload it and try again.")
UNKNOWN = N_("Unknown placeholder: {names}. Known: {known}.")


def phrases(
    session: Session, viewer: Viewer, *, kind: str | None = None, q: str | None = None
) -> Select[Any]:
    """Every phrase the viewer may read: global ones, their own, their unit's and those
    above it, and (to manage them) those of the units below."""
    stmt = visible(select(Phrase), Phrase, viewer)
    if kind:
        stmt = stmt.where(Phrase.kind == kind)
    if q:
        stmt = stmt.where(
            or_(Phrase.title.contains(q, autoescape=True), Phrase.body.contains(q, autoescape=True))
        )
    return stmt


def usable(session: Session, viewer: Viewer) -> list[Phrase]:
    """The phrases offered beside the reply box: mine, my unit's and above, global."""
    me = viewer.staff_id or -1
    stmt = (
        select(Phrase)
        .where(
            (Phrase.kind == "global")
            | ((Phrase.kind == "personal") & (Phrase.owner_id == me))
            | ((Phrase.kind == "unit") & shared_with_me(Phrase.unit_id, viewer))
        )
        .order_by(Phrase.title, Phrase.id)
        .limit(300)
    )
    return list(session.scalars(stmt))


def get_phrase(
    session: Session, viewer: Viewer, phrase_id: int, for_update: bool = False
) -> Phrase:
    return get_visible(session, Phrase, phrase_id, viewer, for_update=for_update)


def _unit_path(session: Session, unit_id: int | None) -> str | None:
    if unit_id is None:
        return None
    return session.scalar(select(Unit.path).where(Unit.id == unit_id))


def _in_my_subtree(viewer: Viewer, path: str | None) -> bool:
    if path is None:
        return False
    return viewer.is_admin or (viewer.unit_path is not None and path.startswith(viewer.unit_path))


def may_edit(session: Session, viewer: Viewer, phrase: Phrase) -> bool:
    """Personal: the owner. Unit: supervisors and managers above or in the unit. Global:
    administrators."""
    if viewer.is_admin:
        return True
    if phrase.kind == "personal":
        return phrase.owner_id == viewer.staff_id
    if phrase.kind == "unit":
        return viewer.has_role(*UNIT_ROLES) and _in_my_subtree(
            viewer, _unit_path(session, phrase.unit_id)
        )
    return False


def _check_body(body: str) -> str:
    bad = policy.unknown(body)
    if bad:
        raise Invalid.field(
            "body",
            UNKNOWN,
            names=", ".join("{" + b + "}" for b in bad),
            known=", ".join("{" + p + "}" for p in policy.PLACEHOLDERS),
        )
    return body


def _fields(p: Phrase) -> dict[str, Any]:
    return {"kind": p.kind, "title": p.title, "body": p.body, "unit_id": p.unit_id}


def create_phrase(session: Session, viewer: Viewer, data: PhraseCreate) -> Phrase:
    if data.kind == "personal" and viewer.staff_id is None:
        raise Forbidden()  # a personal phrase belongs to a person (the CLI seeds others)
    body = _check_body(data.body)
    unit_id = None
    if data.kind == "global" and not viewer.is_admin:
        raise Forbidden(N_("Only administrators may write global phrases."))
    if data.kind == "unit":
        if not viewer.has_role(*UNIT_ROLES):
            raise Forbidden(N_("Only supervisors and managers may write a unit's phrases."))
        if data.unit_id is None or not _in_my_subtree(viewer, _unit_path(session, data.unit_id)):
            raise Invalid.field("unit_id", N_("No such unit."))
        unit_id = data.unit_id
    at = now()
    phrase = Phrase(
        kind=data.kind,
        title=data.title,
        body=body,
        owner_id=viewer.staff_id if data.kind == "personal" else None,
        unit_id=unit_id,
        created_by=viewer.username,
        created_at=at,
        updated_at=at,
    )
    session.add(phrase)
    session.flush()
    record(
        session,
        viewer,
        "phrase.create",
        "phrase",
        phrase.id,
        {k: {"before": None, "after": v} for k, v in _fields(phrase).items()},
    )
    return phrase


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict(STALE) from exc


def update_phrase(session: Session, viewer: Viewer, phrase_id: int, data: PhraseUpdate) -> Phrase:
    phrase = get_phrase(session, viewer, phrase_id, for_update=True)
    if not may_edit(session, viewer, phrase):
        raise Forbidden()
    if phrase.version != data.version:
        raise Conflict(STALE, params={"version": phrase.version})
    before = _fields(phrase)
    if data.title is not None:
        phrase.title = data.title
    if data.body is not None:
        phrase.body = _check_body(data.body)
    phrase.updated_at = now()
    _flush(session)
    after = _fields(phrase)
    changes = {k: {"before": before[k], "after": v} for k, v in after.items() if before[k] != v}
    record(session, viewer, "phrase.update", "phrase", phrase.id, changes)
    return phrase


def delete_phrase(session: Session, viewer: Viewer, phrase_id: int) -> None:
    phrase = get_phrase(session, viewer, phrase_id, for_update=True)
    if not may_edit(session, viewer, phrase):
        raise Forbidden()
    before = _fields(phrase)
    session.delete(phrase)
    _flush(session)
    record(
        session,
        viewer,
        "phrase.delete",
        "phrase",
        phrase_id,
        {k: {"before": v, "after": None} for k, v in before.items()},
    )


def values_for(session: Session, viewer: Viewer, ticket: Ticket) -> dict[str, str]:
    """What each placeholder stands for on this ticket, for this agent."""
    customer = session.get(Customer, ticket.customer_id)
    contact = session.get(Contact, ticket.contact_id) if ticket.contact_id else None
    unit = session.get(Unit, ticket.handling_unit_id)
    agent = session.get(Staff, viewer.staff_id) if viewer.staff_id else None
    customer_name = customer.name if customer else ""
    tz = unit.timezone if unit else "Asia/Shanghai"
    return {
        "customer": customer_name,
        "contact": contact.name if contact else customer_name,
        "ticket_number": ticket.number,
        "subject": ticket.subject,
        "agent": agent.display_name if agent else viewer.username,
        "due": format_datetime(ticket.resolution_due, tz, "short")
        if ticket.resolution_due
        else "—",
        "unit": unit.name if unit else "",
        "service_level": ticket.service_level or "",
    }


def render_phrase(session: Session, viewer: Viewer, phrase_id: int, ticket_id: int) -> str:
    """The phrase filled in for one ticket; both must be visible to the viewer (else 404)."""
    phrase = get_phrase(session, viewer, phrase_id)
    ticket = get_visible(session, Ticket, ticket_id, viewer)
    return policy.fill(phrase.body, values_for(session, viewer, ticket))
