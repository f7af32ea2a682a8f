"""Return visits and survey answers on the customer's timeline."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kefu.customers.timeline import TimelineItem
from kefu.i18n import N_
from kefu.surveys.models import SurveyAnswer
from kefu.visits.models import ReturnVisit

VISIT_TITLES = {
    ("done", True): N_("Return visit: satisfied"),
    ("done", False): N_("Return visit: not satisfied"),
    ("done", None): N_("Return visit done"),
    ("failed", None): N_("Return visit: customer not reached"),
}


def visits_finished(
    session: Session, customer_id: int, before: datetime | None, limit: int
) -> list[TimelineItem]:
    stmt = (
        select(ReturnVisit)
        .where(
            ReturnVisit.customer_id == customer_id,
            ReturnVisit.state.in_(("done", "failed")),
            ReturnVisit.completed_at.is_not(None),
        )
        .order_by(ReturnVisit.completed_at.desc(), ReturnVisit.id.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(ReturnVisit.completed_at < before)
    out = []
    for v in session.scalars(stmt):
        key = (v.state, v.satisfied if v.state == "done" else None)
        assert v.completed_at is not None
        out.append(
            TimelineItem(
                at=v.completed_at,
                kind="visit",
                title=VISIT_TITLES.get(key, VISIT_TITLES[("done", None)]),
                actor=v.completed_by,
                ref=f"/visits/{v.id}",
            )
        )
    return out


def surveys_answered(
    session: Session, customer_id: int, before: datetime | None, limit: int
) -> list[TimelineItem]:
    stmt = (
        select(SurveyAnswer)
        .where(SurveyAnswer.customer_id == customer_id)
        .order_by(SurveyAnswer.answered_at.desc(), SurveyAnswer.id.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(SurveyAnswer.answered_at < before)
    return [
        TimelineItem(
            at=a.answered_at,
            kind="survey",
            title=N_("Survey answered: satisfaction index {index}"),
            params={"index": f"{a.index:.1f}"},
            actor=a.entered_by,
        )
        for a in session.scalars(stmt)
    ]
