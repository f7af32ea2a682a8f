"""Demo after-sales data over the demo tickets: return visits, survey answers, complaints
and service recovery — with differences that the charts can show: key accounts expect more,
one county answers slowly (its responsiveness lags), the recent months improve, complaints
cluster on a few causes and some customers complain again.

Everything is bulk-inserted (one statement per batch), then the satisfaction sums are rebuilt
from the answers in one statement, as `rebuild_months` would after a restore."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from kefu.audit.service import record
from kefu.clock import now
from kefu.complaints.models import Complaint
from kefu.customers.models import Customer
from kefu.scope import Viewer
from kefu.service_levels.models import ServiceLevel, ServiceLevelVersion
from kefu.staff.models import Staff, StaffRole
from kefu.surveys import service as surveys
from kefu.surveys.models import DIMENSIONS, RecoveryTask, SurveyAnswer
from kefu.tickets.models import Category, Ticket
from kefu.units.models import Unit
from kefu.visits import service as visits
from kefu.visits.models import ReturnVisit

SH = ZoneInfo("Asia/Shanghai")
BATCH = 5000
ANSWER_SHARE = 0.35  # of finished ticket visits, the customers who answer a survey
CAUSES = [
    ("response_delay", 9),
    ("repair_quality", 7),
    ("attitude", 4),
    ("network_quality", 6),
    ("billing", 3),
    ("commitment", 3),
    ("onsite_conduct", 2),
    ("other", 1),
]
WORDS_GOOD = ["处理很及时，谢谢", "工程师很专业", "满意", "问题已经解决了", "服务态度很好"]
WORDS_BAD = ["等了太久", "问题反复出现", "希望响应再快一点", "沟通不够主动"]


def _clip(x: float) -> int:
    return max(1, min(7, round(x)))


def build(
    session: Session,
    viewer: Viewer,
    progress: Callable[[str], None] = print,
) -> dict[str, int]:
    if session.scalar(select(func.count()).select_from(ReturnVisit)):
        progress("return visits exist already; demo after-sales data left as it is")
        return {"visits": 0, "answers": 0, "complaints": 0}
    rng = random.Random(6060)
    current = now()
    tier = dict(session.execute(select(Customer.id, Customer.tier)).all())
    complaint_codes = set(
        session.scalars(select(Category.code).where(Category.is_complaint.is_(True)))
    )
    hours = {
        code: h
        for code, h in session.execute(
            select(ServiceLevel.code, ServiceLevelVersion.return_visit_hours).join(
                ServiceLevelVersion, ServiceLevelVersion.id == ServiceLevel.current_version_id
            )
        )
    }
    counties = sorted(
        session.scalars(
            select(Unit.id).where(
                ~Unit.id.in_(select(Unit.parent_id).where(Unit.parent_id.is_not(None)))
            )
        )
    )
    slow_county = counties[len(counties) // 3] if counties else None  # answers slowly
    heads: dict[int, int] = {}
    for uid, sid in session.execute(
        select(Staff.unit_id, func.min(Staff.id))
        .join(StaffRole, StaffRole.staff_id == Staff.id)
        .where(StaffRole.role == "supervisor")
        .group_by(Staff.unit_id)
    ):
        heads[uid] = sid
    template_id = surveys.default_template(session).id
    tickets = session.execute(
        select(
            Ticket.id,
            Ticket.customer_id,
            Ticket.contact_id,
            Ticket.owning_unit_id,
            Ticket.assignee_id,
            Ticket.category_code,
            Ticket.service_level,
            Ticket.resolved_at,
            Ticket.closed_at,
            Ticket.state,
            Ticket.breached_resolution,
            Ticket.created_at,
        ).where(Ticket.resolved_at.is_not(None))
    ).all()
    visit_rows: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []
    complaints: list[dict[str, Any]] = []
    last_cause: dict[tuple[int, str], datetime] = {}
    next_visit = (session.scalar(select(func.max(ReturnVisit.id))) or 0) + 1
    for t in sorted(tickets, key=lambda r: r.resolved_at):
        resolved = t.resolved_at
        due = resolved + timedelta(hours=hours.get(t.service_level or "1A", 72) * 1.4)
        a_tier = tier.get(t.customer_id) or "C"
        finished = t.state == "closed" or due < current - timedelta(days=2)
        vid = next_visit
        next_visit += 1
        row: dict[str, Any] = {
            "id": vid,
            "kind": "ticket",
            "method": "phone",
            "customer_id": t.customer_id,
            "contact_id": t.contact_id,
            "ticket_id": t.id,
            "owning_unit_id": t.owning_unit_id,
            "assignee_id": t.assignee_id,
            "due_at": due,
            "state": "scheduled",
            "attempts": 0,
            "next_attempt_at": None,
            "reached": None,
            "satisfied": None,
            "follow_up": False,
            "customer_words": "",
            "completed_at": None,
            "completed_by": None,
            "escalation": 0,
            "dedupe_key": f"ticket:{t.id}:1",
            "created_at": resolved,
            "version": 1,
        }
        complaint = t.category_code in complaint_codes
        if finished:
            reached = rng.random() < 0.9
            done_at = resolved + (due - resolved) * rng.uniform(0.2, 1.1)
            row.update(
                state="done" if reached else "failed",
                attempts=0 if reached else 3,
                reached=reached,
                completed_at=min(done_at, current),
                completed_by="demo",
            )
            if reached:
                # How the customer felt: breaches, complaints and the slow county hurt;
                # the last quarter got better.
                mood = 0.0
                mood -= 1.2 if t.breached_resolution else 0.0
                mood -= 0.9 if complaint else 0.0
                mood -= 0.7 if t.owning_unit_id == slow_county else 0.0
                mood += 0.4 if resolved > current - timedelta(days=90) else 0.0
                satisfied = rng.gauss(mood, 1.0) > -1.2
                row.update(
                    satisfied=satisfied,
                    follow_up=not satisfied and rng.random() < 0.5,
                    customer_words=rng.choice(WORDS_GOOD if satisfied else WORDS_BAD),
                )
                if rng.random() < ANSWER_SHARE:
                    # Key accounts expect more and are harder to delight.
                    expect = {"A": 6.4, "B": 5.8}.get(a_tier, 5.2)
                    gap = {"A": -0.35, "B": 0.05}.get(a_tier, 0.3)
                    scores: dict[str, int] = {}
                    for d in DIMENSIONS:
                        scores[f"e_{d}"] = _clip(rng.gauss(expect, 0.6))
                        lag = (
                            0.9
                            if d == "responsiveness" and t.owning_unit_id == slow_county
                            else 0.0
                        )
                        lag += 0.5 if d == "responsiveness" and t.breached_resolution else 0.0
                        scores[f"p_{d}"] = _clip(rng.gauss(expect + gap + mood * 0.8 - lag, 0.7))
                    e = sum(scores[f"e_{d}"] for d in DIMENSIONS)
                    p = sum(scores[f"p_{d}"] for d in DIMENSIONS)
                    answered = row["completed_at"]
                    answers.append(
                        {
                            "template_id": template_id,
                            "channel": "phone" if rng.random() < 0.6 else "link",
                            "visit_id": vid,
                            "invitation_id": None,
                            "ticket_id": t.id,
                            "customer_id": t.customer_id,
                            "contact_id": t.contact_id,
                            "owning_unit_id": t.owning_unit_id,
                            "agent_id": t.assignee_id,
                            "tier": a_tier,
                            "service_level": t.service_level or "",
                            "category_code": t.category_code,
                            **scores,
                            "expected_total": e,
                            "perceived_total": p,
                            "csat": max(1, min(5, round(4.2 + (p - e) / 5 + rng.gauss(0.0, 0.6)))),
                            "nps": max(0, min(10, round(8.4 + (p - e) / 3 + rng.gauss(0.3, 1.2)))),
                            "comment": row["customer_words"],
                            "entered_by": "demo",
                            "answered_at": answered,
                            "month": answered.astimezone(SH).date().replace(day=1),
                        }
                    )
        visit_rows.append(row)
        if complaint:
            cause = rng.choices([c for c, _ in CAUSES], weights=[w for _, w in CAUSES])[0]
            key = (t.customer_id, cause)
            repeat = key in last_cause and t.created_at - last_cause[key] < timedelta(days=90)
            last_cause[key] = t.created_at
            severity = min(3, rng.choice([1, 1, 1, 2, 2, 3]) + (1 if repeat else 0))
            money = Decimal(rng.choice([0, 0, 0, 100, 200, 300, 800, 1500]))
            verified = t.state == "closed"
            complaints.append(
                {
                    "ticket_id": t.id,
                    "customer_id": t.customer_id,
                    "owning_unit_id": t.owning_unit_id,
                    "severity": severity,
                    "severity_reason": "repeat" if repeat else "",
                    "cause_code": cause,
                    "repeat_of_id": None,
                    "remedy": "上门核查并处理，向客户致歉" if verified else "",
                    "compensation": money or None,
                    "compensation_state": ("approved" if money else "none")
                    if verified
                    else ("pending" if money > 500 else ("approved" if money else "none")),
                    "compensation_decided_by": "demo" if verified and money else None,
                    "compensation_decided_at": resolved if verified and money else None,
                    "verified_at": resolved + timedelta(days=1) if verified else None,
                    "verified_by": "demo" if verified else None,
                    "verification": "客户确认问题已解决" if verified else "",
                    "created_at": t.created_at,
                    "updated_at": resolved,
                    "version": 1,
                }
            )
    for i in range(0, len(visit_rows), BATCH):
        session.execute(insert(ReturnVisit), visit_rows[i : i + BATCH])
    for i in range(0, len(answers), BATCH):
        session.execute(insert(SurveyAnswer), answers[i : i + BATCH])
    for i in range(0, len(complaints), BATCH):
        session.execute(insert(Complaint), complaints[i : i + BATCH])
    session.flush()
    # Recovery after the low answers of the last two months; older ones are done.
    thresholds = surveys.thresholds()
    from kefu.surveys import policy as survey_policy

    tasks = []
    recent = current - timedelta(days=60)
    for a in session.execute(
        select(
            SurveyAnswer.id,
            SurveyAnswer.customer_id,
            SurveyAnswer.ticket_id,
            SurveyAnswer.owning_unit_id,
            SurveyAnswer.perceived_total,
            SurveyAnswer.expected_total,
            SurveyAnswer.csat,
            SurveyAnswer.nps,
            SurveyAnswer.answered_at,
        )
    ):
        reasons = survey_policy.low_reasons(
            a.perceived_total, a.expected_total, a.csat, a.nps, thresholds
        )
        if not reasons or a.answered_at < current - timedelta(days=365):
            continue
        done = a.answered_at < recent or rng.random() < 0.5
        tasks.append(
            {
                "answer_id": a.id,
                "customer_id": a.customer_id,
                "ticket_id": a.ticket_id,
                "owning_unit_id": a.owning_unit_id,
                "assignee_id": heads.get(a.owning_unit_id),
                "reasons": reasons,
                "due_at": a.answered_at + timedelta(days=2),
                "state": "done" if done else "open",
                "outcome": "单位负责人电话致歉并跟进处理" if done else "",
                "done_at": a.answered_at + timedelta(days=1) if done else None,
                "done_by": "demo" if done else None,
                "followup_visit_id": None,
                "created_at": a.answered_at,
                "version": 1,
            }
        )
    for i in range(0, len(tasks), BATCH):
        session.execute(insert(RecoveryTask), tasks[i : i + BATCH])
    sums = surveys.rebuild_months(session)
    from kefu.loyalty import service as loyalty

    loyalty.refresh_if_stale(session)
    periodic = visits.schedule_periodic(session, current)
    progress(
        f"{len(visit_rows)} return visits, {len(answers)} survey answers ({sums} monthly sums), "
        f"{len(complaints)} complaints, {len(tasks)} recovery tasks, {periodic} periodic visits"
    )
    record(
        session,
        viewer,
        "demo.after_sales",
        "return_visit",
        "*",
        {"visits": {"before": 0, "after": len(visit_rows)}},
    )
    session.flush()
    return {"visits": len(visit_rows), "answers": len(answers), "complaints": len(complaints)}
