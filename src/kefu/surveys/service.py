"""Surveys: invitations with signed single-use links, answers by link or by phone, the
monthly sums reports read, and service recovery after a low result. Services flush; the
edge commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from kefu.audit.service import record
from kefu.auth import service as auth
from kefu.clock import now
from kefu.config import get_settings, secret_key
from kefu.customers.models import Contact, Customer
from kefu.errors import Conflict, Invalid
from kefu.i18n import N_
from kefu.notifications.service import notify
from kefu.scope import Viewer, get_visible
from kefu.sla import service as sla
from kefu.staff.models import Staff, StaffRole
from kefu.surveys import policy
from kefu.surveys.models import (
    DIMENSIONS,
    RecoveryTask,
    SatisfactionMonth,
    SurveyAnswer,
    SurveyInvitation,
    SurveyTemplate,
)
from kefu.surveys.schemas import AnswerIn, InvitationIn, RecoveryDoneIn, TemplateUpdate
from kefu.tickets.models import Ticket, TicketEvent
from kefu.units.models import Unit
from kefu.visits.models import ReturnVisit

STALE = N_("Someone else changed this record; reload it and try again.")
RECOVERY_REASK_HOURS = 24  # business hours after the recovery before the customer is asked


def thresholds() -> policy.Thresholds:
    s = get_settings()
    return policy.Thresholds(
        s.recovery_index_below, s.recovery_csat_at_most, s.recovery_nps_at_most
    )


def default_template(session: Session) -> SurveyTemplate:
    row = session.scalars(
        select(SurveyTemplate)
        .where(SurveyTemplate.is_active.is_(True))
        .order_by(SurveyTemplate.is_default.desc(), SurveyTemplate.id)
    ).first()
    if row is None:
        raise Invalid.field("template", N_("No active survey template exists."))
    return row


# --- invitations ----------------------------------------------------------------------------


def invite(session: Session, viewer: Viewer, data: InvitationIn) -> tuple[SurveyInvitation, str]:
    """A survey link for a resolved ticket or a return visit the viewer sees."""
    from kefu.tickets.service import get_ticket  # tickets call visits; surveys read tickets
    from kefu.visits.service import get_visit

    if (data.ticket_id is None) == (data.visit_id is None):
        raise Invalid.field("ticket_id", N_("Give either a ticket or a return visit."))
    visit = get_visit(session, viewer, data.visit_id) if data.visit_id is not None else None
    ticket_id = visit.ticket_id if visit is not None else data.ticket_id
    ticket = get_ticket(session, viewer, ticket_id) if ticket_id is not None else None
    if visit is None and ticket is not None and ticket.state not in ("resolved", "closed"):
        raise Invalid.field("ticket_id", N_("A survey follows the resolution of a ticket."))
    customer_id = visit.customer_id if visit is not None else ticket.customer_id  # type: ignore[union-attr]
    contact_id = visit.contact_id if visit is not None else ticket.contact_id  # type: ignore[union-attr]
    unit_id = visit.owning_unit_id if visit is not None else ticket.owning_unit_id  # type: ignore[union-attr]
    locale = "zh_CN"
    if contact_id is not None:
        locale = session.scalar(select(Contact.locale).where(Contact.id == contact_id)) or locale
    at = now()
    invitation = SurveyInvitation(
        template_id=default_template(session).id,
        customer_id=customer_id,
        contact_id=contact_id,
        ticket_id=ticket_id,
        visit_id=visit.id if visit is not None else None,
        owning_unit_id=unit_id,
        locale=locale,
        expires_at=at + timedelta(days=get_settings().survey_link_days),
        created_by=viewer.username,
        created_at=at,
    )
    session.add(invitation)
    session.flush()
    record(session, viewer, "survey.invite", "survey_invitation", invitation.id)
    return invitation, token_for(invitation)


def token_for(invitation: SurveyInvitation) -> str:
    return policy.sign(secret_key(get_settings()), invitation.id, invitation.expires_at)


@dataclass
class Opened:
    """A survey link as its visitor sees it: the invitation, or why not (a msgid + status)."""

    invitation: SurveyInvitation | None = None
    template: SurveyTemplate | None = None
    ticket_number: str | None = None
    ticket_subject: str | None = None
    error: str | None = None
    status: int = 200
    answer: SurveyAnswer | None = None


def open_link(session: Session, token: str, remote_addr: str) -> Opened:
    """Check a survey link. A wrong token counts as a failed attempt of the address (the
    caller commits it, then refuses), so links cannot be guessed by trying."""
    if auth.address_throttled(session, remote_addr):
        return Opened(error=N_("Too many attempts from your address; try again later."), status=429)
    facts = policy.verify(secret_key(get_settings()), token[:200])
    invitation = session.get(SurveyInvitation, facts.invitation_id) if facts else None
    if (
        facts is None
        or invitation is None
        or (int(invitation.expires_at.timestamp()) != int(facts.expires_at.timestamp()))
    ):
        auth.record_failed_attempt(session, "survey-link", remote_addr)
        return Opened(error=N_("This survey link is not valid."), status=404)
    if invitation.answered_at is not None:
        return Opened(error=N_("Thank you: this survey has been answered already."), status=409)
    if invitation.expires_at <= now():
        return Opened(error=N_("This survey link has expired."), status=410)
    opened = Opened(invitation, session.get(SurveyTemplate, invitation.template_id))
    if invitation.ticket_id is not None:
        ticket = session.get(Ticket, invitation.ticket_id)
        if ticket is not None:
            opened.ticket_number, opened.ticket_subject = ticket.number, ticket.subject
    return opened


def submit_link(session: Session, token: str, data: AnswerIn, remote_addr: str) -> Opened:
    """The customer's answer through the link: stored once; a second submission (even a
    concurrent one) is refused."""
    opened = open_link(session, token, remote_addr)
    if opened.invitation is None:
        return opened
    invitation = opened.invitation
    at = now()
    claimed = session.execute(
        update(SurveyInvitation)
        .where(SurveyInvitation.id == invitation.id, SurveyInvitation.answered_at.is_(None))
        .values(answered_at=at)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return Opened(error=N_("Thank you: this survey has been answered already."), status=409)
    visit = session.get(ReturnVisit, invitation.visit_id) if invitation.visit_id else None
    opened.answer = _store(
        session,
        channel="link",
        template_id=invitation.template_id,
        invitation_id=invitation.id,
        visit=visit,
        ticket_id=invitation.ticket_id,
        customer_id=invitation.customer_id,
        contact_id=invitation.contact_id,
        unit_id=invitation.owning_unit_id,
        data=data,
        entered_by=None,
        actor="customer",
        at=at,
    )
    return opened


def answer_by_phone(
    session: Session, viewer: Viewer, visit_id: int, data: AnswerIn
) -> SurveyAnswer:
    """Answers the customer gave on the phone, entered by the agent on the return visit."""
    from kefu.visits.service import get_visit

    visit = get_visit(session, viewer, visit_id, for_update=True)
    if session.scalar(select(SurveyAnswer.id).where(SurveyAnswer.visit_id == visit.id)):
        raise Invalid.field("visit_id", N_("This return visit has its survey answer already."))
    answer = _store(
        session,
        channel="phone",
        template_id=default_template(session).id,
        invitation_id=None,
        visit=visit,
        ticket_id=visit.ticket_id,
        customer_id=visit.customer_id,
        contact_id=visit.contact_id,
        unit_id=visit.owning_unit_id,
        data=data,
        entered_by=viewer.username,
        actor=viewer.username,
        at=now(),
    )
    record(
        session,
        viewer,
        "survey.answer",
        "survey_answer",
        answer.id,
        {"index": {"before": None, "after": answer.index}},
    )
    return answer


def _month(session: Session, unit_id: int, at: datetime) -> date:
    tz = session.scalar(select(Unit.timezone).where(Unit.id == unit_id)) or "Asia/Shanghai"
    return at.astimezone(ZoneInfo(tz)).date().replace(day=1)


COUNTERS = (
    "answers",
    "expected",
    "perceived",
    *(f"{p}_{d}" for d in DIMENSIONS for p in ("e", "p")),
    "csat_answers",
    "csat_satisfied",
    "nps_answers",
    "promoters",
    "detractors",
)


def _add_to_month(session: Session, answer: SurveyAnswer) -> None:
    """One upsert per answer: the monthly sums stay exact under concurrent answers."""
    values: dict[str, Any] = {
        "unit_id": answer.owning_unit_id,
        "month": answer.month,
        "tier": answer.tier,
        "service_level": answer.service_level,
        "category_code": answer.category_code,
        "answers": 1,
        "expected": answer.expected_total,
        "perceived": answer.perceived_total,
        "csat_answers": int(answer.csat is not None),
        "csat_satisfied": int(answer.csat is not None and answer.csat >= 4),
        "nps_answers": int(answer.nps is not None),
        "promoters": int(answer.nps is not None and answer.nps >= 9),
        "detractors": int(answer.nps is not None and answer.nps <= 6),
    }
    for d in DIMENSIONS:
        for p in ("e", "p"):
            values[f"{p}_{d}"] = getattr(answer, f"{p}_{d}")
    pg = session.get_bind().dialect.name == "postgresql"
    table: Any = SatisfactionMonth.__table__
    stmt = (pg_insert if pg else sqlite_insert)(table).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["unit_id", "month", "tier", "service_level", "category_code"],
        set_={c: table.c[c] + stmt.excluded[c] for c in COUNTERS},
    )
    session.execute(stmt)


def _unit_head(session: Session, unit_id: int) -> int | None:
    return session.scalar(
        select(func.min(Staff.id))
        .join(StaffRole, StaffRole.staff_id == Staff.id)
        .where(Staff.unit_id == unit_id, StaffRole.role == "supervisor", Staff.is_active.is_(True))
    )


def _store(
    session: Session,
    *,
    channel: str,
    template_id: int,
    invitation_id: int | None,
    visit: ReturnVisit | None,
    ticket_id: int | None,
    customer_id: int,
    contact_id: int | None,
    unit_id: int,
    data: AnswerIn,
    entered_by: str | None,
    actor: str,
    at: datetime,
) -> SurveyAnswer:
    ticket = session.get(Ticket, ticket_id) if ticket_id is not None else None
    customer = session.get(Customer, customer_id)
    scores: dict[str, int] = {}
    for d in DIMENSIONS:
        scores[f"e_{d}"] = getattr(data.expectations, d)
        scores[f"p_{d}"] = getattr(data.perceptions, d)
    answer = SurveyAnswer(
        invitation_id=invitation_id,
        visit_id=visit.id if visit is not None and channel == "phone" else None,
        template_id=template_id,
        channel=channel,
        ticket_id=ticket_id,
        customer_id=customer_id,
        contact_id=contact_id,
        owning_unit_id=unit_id,
        agent_id=ticket.assignee_id
        if ticket is not None
        else (visit.assignee_id if visit else None),
        tier=(customer.tier if customer is not None else None) or "",
        service_level=(ticket.service_level if ticket is not None else None)
        or (customer.service_level if customer is not None else None)
        or "",
        category_code=ticket.category_code if ticket is not None else "",
        expected_total=sum(scores[f"e_{d}"] for d in DIMENSIONS),
        perceived_total=sum(scores[f"p_{d}"] for d in DIMENSIONS),
        csat=data.csat,
        nps=data.nps,
        comment=data.comment.strip(),
        entered_by=entered_by,
        answered_at=at,
        month=_month(session, unit_id, at),
        **scores,
    )
    session.add(answer)
    session.flush()
    _add_to_month(session, answer)
    reasons = policy.low_reasons(
        answer.perceived_total, answer.expected_total, answer.csat, answer.nps, thresholds()
    )
    if visit is not None and visit.state == "scheduled":
        visit.state, visit.reached, visit.satisfied = "done", True, not reasons
        visit.completed_at, visit.completed_by = at, actor
    if ticket is not None:
        session.add(
            TicketEvent(
                ticket_id=ticket.id,
                at=at,
                kind="survey",
                actor=actor,
                public=False,
                data={
                    "answer_id": answer.id,
                    "index": answer.index,
                    "csat": answer.csat,
                    "nps": answer.nps,
                },
            )
        )
    if reasons:
        _open_recovery(session, answer, reasons, at)
    notify(
        session,
        "survey.answered",
        f"staff:{answer.agent_id}" if answer.agent_id else f"unit_head:{unit_id}",
        {
            "answer_id": answer.id,
            "ticket_id": ticket_id,
            "number": ticket.number if ticket is not None else None,
            "customer_id": customer_id,
            "channel": channel,
            "index": round(answer.index, 1),
            "csat": answer.csat,
            "nps": answer.nps,
            "low": bool(reasons),
        },
        f"survey.answered:{answer.id}",
    )
    return answer


def _open_recovery(
    session: Session, answer: SurveyAnswer, reasons: list[str], at: datetime
) -> None:
    unit_id = answer.owning_unit_id
    task = RecoveryTask(
        answer_id=answer.id,
        customer_id=answer.customer_id,
        ticket_id=answer.ticket_id,
        owning_unit_id=unit_id,
        assignee_id=_unit_head(session, unit_id),
        reasons=reasons,
        due_at=sla.due(session, unit_id, at, get_settings().recovery_hours * 60),
        created_at=at,
    )
    session.add(task)
    session.flush()
    notify(
        session,
        "recovery.opened",
        f"staff:{task.assignee_id}" if task.assignee_id else f"unit_head:{unit_id}",
        {
            "task_id": task.id,
            "customer_id": task.customer_id,
            "ticket_id": task.ticket_id,
            "reasons": reasons,
            "due_at": task.due_at.isoformat(),
        },
        f"recovery.opened:{task.id}",
    )


def get_recovery(
    session: Session, viewer: Viewer, task_id: int, for_update: bool = False
) -> RecoveryTask:
    return get_visible(session, RecoveryTask, task_id, viewer, for_update=for_update)


def complete_recovery(
    session: Session, viewer: Viewer, task_id: int, data: RecoveryDoneIn
) -> RecoveryTask:
    """The unit head's recovery is recorded, and the customer is asked again: a return
    visit of kind 'recovery' is scheduled."""
    task = get_recovery(session, viewer, task_id, for_update=True)
    if task.version != data.version:
        raise Conflict(STALE)
    if task.state != "open":
        raise Invalid.field("state", N_("This recovery task is done already."))
    at = now()
    task.state, task.outcome, task.done_at, task.done_by = (
        "done",
        data.outcome.strip(),
        at,
        viewer.username,
    )
    contact_id = None
    if task.ticket_id is not None:
        contact_id = session.scalar(select(Ticket.contact_id).where(Ticket.id == task.ticket_id))
    visit = ReturnVisit(
        kind="recovery",
        method="phone",
        customer_id=task.customer_id,
        contact_id=contact_id,
        ticket_id=task.ticket_id,
        owning_unit_id=task.owning_unit_id,
        assignee_id=task.assignee_id,
        due_at=sla.due(session, task.owning_unit_id, at, RECOVERY_REASK_HOURS * 60),
        dedupe_key=f"recovery:{task.id}",
        created_at=at,
    )
    session.add(visit)
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict(STALE) from exc
    task.followup_visit_id = visit.id
    session.flush()  # the answer carries the version this change made
    record(
        session,
        viewer,
        "recovery.done",
        "recovery_task",
        task.id,
        {"state": {"before": "open", "after": "done"}},
    )
    return task


def rebuild_months(session: Session) -> int:
    """The monthly sums again from the answers, in one statement (after a restore, or to
    check them): the same numbers the per-answer upserts keep."""
    from sqlalchemy import case, delete

    session.execute(delete(SatisfactionMonth))
    a = SurveyAnswer
    one = 1
    cols = {
        "answers": func.count(),
        "expected": func.sum(a.expected_total),
        "perceived": func.sum(a.perceived_total),
        **{f"{p}_{d}": func.sum(getattr(a, f"{p}_{d}")) for d in DIMENSIONS for p in ("e", "p")},
        "csat_answers": func.count(a.csat),
        "csat_satisfied": func.sum(case((a.csat >= 4, one), else_=0)),
        "nps_answers": func.count(a.nps),
        "promoters": func.sum(case((a.nps >= 9, one), else_=0)),
        "detractors": func.sum(case((a.nps <= 6, one), else_=0)),
    }
    keys = (a.owning_unit_id, a.month, a.tier, a.service_level, a.category_code)
    rows = select(*keys, *cols.values()).group_by(*keys)
    table: Any = SatisfactionMonth.__table__
    result = session.execute(
        table.insert().from_select(
            ["unit_id", "month", "tier", "service_level", "category_code", *cols], rows
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- templates --------------------------------------------------------------------------------

TEMPLATE_KEYS = ("intro", *DIMENSIONS, "csat", "nps", "comment")


def update_template(
    session: Session, viewer: Viewer, template_id: int, data: TemplateUpdate
) -> SurveyTemplate:
    """Administrators edit the questions; answers already given keep their scores (the
    template's texts are wording, not the scale)."""
    from kefu.errors import NotFound

    if not viewer.is_admin:
        raise NotFound(params={"id": template_id})
    template = session.get(SurveyTemplate, template_id)
    if template is None:
        raise NotFound(params={"id": template_id})
    old_texts: dict[str, Any] = dict(template.texts)
    texts = dict(template.texts)
    for key in TEMPLATE_KEYS:
        value = getattr(data, key)
        if value is not None:
            texts[key] = {"zh_CN": value.zh_CN.strip(), "en": value.en.strip()}
    template.texts = texts
    if data.name is not None:
        template.name = data.name.strip()
    template.updated_at = now()
    session.flush()
    changed = sorted(k for k in TEMPLATE_KEYS if old_texts.get(k) != texts.get(k))
    record(
        session,
        viewer,
        "survey.template",
        "survey_template",
        template.id,
        {"texts": {"before": changed, "after": changed}} if changed else {},
    )
    return template


def templates(session: Session) -> list[SurveyTemplate]:
    return list(session.scalars(select(SurveyTemplate).order_by(SurveyTemplate.id)))
