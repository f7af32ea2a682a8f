"""Return visits (回访) and service recovery in the web: the queue of a unit's visits by due
date, a visit with its attempts and the outcome form, survey links and answers given on the
phone; the recovery tasks of a unit head."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from kefu.clock import now
from kefu.customers.models import Customer
from kefu.errors import Conflict, FieldError, Invalid
from kefu.i18n import N_
from kefu.pagination import paginate
from kefu.staff.models import Staff
from kefu.surveys import queries as survey_queries
from kefu.surveys import service as surveys
from kefu.surveys.models import DIMENSIONS, RecoveryTask, SurveyAnswer
from kefu.surveys.schemas import AnswerIn, InvitationIn, RecoveryDoneIn
from kefu.tickets.models import Ticket
from kefu.tickets.queries import rows_by_id
from kefu.units.models import Unit
from kefu.visits import queries
from kefu.visits import service as visits
from kefu.visits.models import ReturnVisit
from kefu.visits.schemas import OutcomeIn
from kefu.web.common import (
    CurrentMe,
    Db,
    Form,
    Me,
    PostedForm,
    env,
    parse,
    redirect,
    render,
    text,
    url_with,
)

router = APIRouter()
PAGE_SIZE = 25

KIND_LABELS = {
    "ticket": N_("After a ticket"),
    "periodic": N_("Periodic visit"),
    "recovery": N_("After recovery"),
}
METHOD_LABELS = {
    "phone": N_("Phone call"),
    "onsite": N_("On-site visit"),
    "survey": N_("Survey link"),
}
STATE_LABELS = {
    "scheduled": N_("Scheduled"),
    "done": N_("Done"),
    "failed": N_("Not reached"),
    "cancelled": N_("Cancelled"),
}
DIMENSION_LABELS = {
    "reliability": N_("Reliability"),
    "responsiveness": N_("Responsiveness"),
    "assurance": N_("Assurance"),
    "empathy": N_("Empathy"),
    "tangibles": N_("Tangibles"),
}
REASON_LABELS = {
    "index": N_("Low satisfaction index"),
    "csat": N_("Low CSAT"),
    "nps": N_("NPS detractor"),
}
VISIT_STEP_LABELS = {
    "scheduled": N_("scheduled"),
    "done": N_("done"),
    "failed": N_("not reached, given up"),
    "unreached": N_("not reached"),
    "overdue_breach": N_("overdue, the unit head was told"),
    "overdue_parent": N_("overdue, the parent unit was told"),
}
VIEWS = {
    "mine": N_("My visits"),
    "unit": N_("My unit's visits"),
    "overdue": N_("Overdue"),
}
STALE = N_("Someone else changed this record; reload it and try again.")
LABELS = {
    "KIND_LABELS": KIND_LABELS,
    "METHOD_LABELS": METHOD_LABELS,
    "VISIT_STATE_LABELS": STATE_LABELS,
    "DIMENSION_LABELS": DIMENSION_LABELS,
    "REASON_LABELS": REASON_LABELS,
    "DIMENSIONS": DIMENSIONS,
    "VISIT_STEP_LABELS": VISIT_STEP_LABELS,
}
env.globals.update(LABELS)  # macros imported without context see them too


@router.get("/visits")
def queue(request: Request, me: CurrentMe, db: Db) -> Response:
    p = request.query_params
    view = p.get("view") if p.get("view") in VIEWS else "mine"
    kind = p.get("kind") if p.get("kind") in KIND_LABELS else ""
    at = now()
    stmt = queries.visits(
        db,
        me.viewer,
        kind=kind or None,
        unit_id=me.unit_id if view in ("unit", "overdue") else None,
        assignee_id=me.id if view == "mine" else None,
        overdue_at=at if view == "overdue" else None,
    )
    cursor = p.get("cursor") or None
    page = paginate(
        db, stmt, key=(ReturnVisit.due_at, ReturnVisit.id), limit=PAGE_SIZE, cursor=cursor
    )
    rows = page.items
    ctx = {
        "view": view,
        "views": VIEWS,
        "filters": Form({"kind": kind}, key="filter"),
        "kind_options": list(KIND_LABELS.items()),
        "visits": rows,
        "at": at,
        "customers": rows_by_id(db, Customer, {v.customer_id for v in rows}),
        "people": rows_by_id(db, Staff, {v.assignee_id for v in rows}),
        "tickets": rows_by_id(db, Ticket, {v.ticket_id for v in rows}),
        "first_url": url_with(request, cursor=None) if cursor else None,
        "next_url": url_with(request, cursor=page.next_cursor) if page.next_cursor else None,
        **LABELS,
    }
    return render(request, "visits/queue.html", ctx, fragment="results")


def blank_answer_form(
    values: dict[str, Any] | None = None, errors: list[FieldError] | None = None
) -> Form:
    blank: dict[str, Any] = {f"{p}_{d}": "" for d in DIMENSIONS for p in ("e", "p")}
    blank.update({"csat": "", "nps": "", "comment": ""})
    return Form({**blank, **(values or {})}, errors or [], key="answer")


def _visit_page(
    request: Request,
    db: Session,
    me: Me,
    visit_id: int,
    *,
    status: int = 200,
    outcome_form: Form | None = None,
    answer_form: Form | None = None,
    link: str | None = None,
) -> Response:
    visit = visits.get_visit(db, me.viewer, visit_id)
    ticket = db.get(Ticket, visit.ticket_id) if visit.ticket_id else None
    answers = (
        list(db.scalars(survey_queries.answers(db, me.viewer, ticket_id=visit.ticket_id).limit(5)))
        if visit.ticket_id
        else []
    )
    ctx = {
        "visit": visit,
        "ticket": ticket,
        "customer": db.get(Customer, visit.customer_id),
        "assignee": db.get(Staff, visit.assignee_id) if visit.assignee_id else None,
        "unit": db.get(Unit, visit.owning_unit_id),
        "attempts": visits.attempts(db, visit.id),
        "answers": answers,
        "outcome_form": outcome_form
        or Form(
            {"reached": "", "satisfied": "", "follow_up": "", "customer_words": ""}, key="outcome"
        ),
        "answer_form": answer_form or blank_answer_form(),
        "link": link,
        "overdue": visit.state == "scheduled" and visit.due_at < now(),
        **LABELS,
    }
    return render(request, "visits/visit.html", ctx, status=status)


@router.get("/visits/{visit_id}")
def visit_page(visit_id: int, request: Request, me: CurrentMe, db: Db) -> Response:
    return _visit_page(request, db, me, visit_id)


def _version(form: FormData) -> int:
    raw = text(form, "version")
    return int(raw) if raw.isdigit() else -1


@router.post("/visits/{visit_id}/outcome")
def record_outcome(
    visit_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    visits.get_visit(db, me.viewer, visit_id)  # out of scope: 404 before anything else
    values = {
        "reached": text(form, "reached"),
        "satisfied": text(form, "satisfied"),
        "follow_up": text(form, "follow_up"),
        "customer_words": text(form, "customer_words"),
    }
    try:
        with db.begin_nested():
            if values["reached"] not in ("yes", "no"):
                raise Invalid.field("reached", N_("Say whether the customer was reached."))
            reached = values["reached"] == "yes"
            data = parse(
                OutcomeIn,
                {
                    "version": _version(form),
                    "reached": reached,
                    "satisfied": {"yes": True, "no": False}.get(values["satisfied"])
                    if reached
                    else None,
                    "follow_up": values["follow_up"] == "1",
                    "customer_words": values["customer_words"],
                },
            )
            visits.record_outcome(db, me.viewer, visit_id, data)
    except (Invalid, Conflict) as exc:
        db.expire_all()
        errors = exc.errors if isinstance(exc, Invalid) else [FieldError("version", STALE)]
        code = 409 if isinstance(exc, Conflict) else 422
        bad = Form(values, errors, key="outcome")
        return _visit_page(request, db, me, visit_id, status=code, outcome_form=bad)
    return redirect(request, f"/visits/{visit_id}", "saved")


@router.post("/visits/{visit_id}/survey-link")
def survey_link(
    visit_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    _, token = surveys.invite(db, me.viewer, InvitationIn(visit_id=visit_id))
    link = str(request.base_url).rstrip("/") + f"/s/{token}"
    return _visit_page(request, db, me, visit_id, link=link)


def answer_data(form: FormData) -> tuple[dict[str, Any], dict[str, Any]]:
    """Form fields (e_reliability …) to the API's answer shape, and the values to show."""
    values = {k: text(form, k) for k in blank_answer_form().values}

    def score(v: str) -> Any:
        return int(v) if v.strip().lstrip("-").isdigit() else (v or None)

    # A score left empty is missing (the error says "required"), not a bad number.
    data = {
        "expectations": {d: score(values[f"e_{d}"]) for d in DIMENSIONS if values[f"e_{d}"]},
        "perceptions": {d: score(values[f"p_{d}"]) for d in DIMENSIONS if values[f"p_{d}"]},
        "csat": score(values["csat"]),
        "nps": score(values["nps"]),
        "comment": values["comment"],
    }
    return data, values


def form_errors(exc: Invalid) -> list[FieldError]:
    """'expectations.reliability' → 'e_reliability', as the form names its fields."""
    out = []
    for e in exc.errors:
        name = e.field
        for prefix, short in (("expectations.", "e_"), ("perceptions.", "p_")):
            if name.startswith(prefix):
                name = short + name[len(prefix) :]
        out.append(FieldError(name, e.message, e.params))
    return out


@router.post("/visits/{visit_id}/answer")
def phone_answer(
    visit_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    visits.get_visit(db, me.viewer, visit_id)
    data, values = answer_data(form)
    try:
        with db.begin_nested():
            surveys.answer_by_phone(db, me.viewer, visit_id, parse(AnswerIn, data))
    except Invalid as exc:
        db.expire_all()
        bad = blank_answer_form(values, form_errors(exc))
        return _visit_page(request, db, me, visit_id, status=422, answer_form=bad)
    return redirect(request, f"/visits/{visit_id}", "saved")


# --- service recovery -------------------------------------------------------------------------


@router.get("/recovery")
def recovery_list(request: Request, me: CurrentMe, db: Db) -> Response:
    p = request.query_params
    state = p.get("state") if p.get("state") in ("open", "done") else "open"
    cursor = p.get("cursor") or None
    page = paginate(
        db,
        survey_queries.recovery_tasks(db, me.viewer, state=state),
        key=(RecoveryTask.due_at, RecoveryTask.id),
        limit=PAGE_SIZE,
        cursor=cursor,
    )
    rows = page.items
    ctx = {
        "state": state,
        "tasks": rows,
        "at": now(),
        "customers": rows_by_id(db, Customer, {t.customer_id for t in rows}),
        "people": rows_by_id(db, Staff, {t.assignee_id for t in rows}),
        "first_url": url_with(request, cursor=None) if cursor else None,
        "next_url": url_with(request, cursor=page.next_cursor) if page.next_cursor else None,
        **LABELS,
    }
    return render(request, "visits/recovery_list.html", ctx, fragment="results")


def _recovery_page(
    request: Request,
    db: Session,
    me: Me,
    task_id: int,
    *,
    status: int = 200,
    form: Form | None = None,
) -> Response:
    task = surveys.get_recovery(db, me.viewer, task_id)
    ctx = {
        "task": task,
        "answer": db.get(SurveyAnswer, task.answer_id),
        "customer": db.get(Customer, task.customer_id),
        "ticket": db.get(Ticket, task.ticket_id) if task.ticket_id else None,
        "assignee": db.get(Staff, task.assignee_id) if task.assignee_id else None,
        "form": form or Form({"outcome": ""}, key="recovery"),
        "at": now(),
        **LABELS,
    }
    return render(request, "visits/recovery.html", ctx, status=status)


@router.get("/recovery/{task_id}")
def recovery_page(task_id: int, request: Request, me: CurrentMe, db: Db) -> Response:
    return _recovery_page(request, db, me, task_id)


@router.post("/recovery/{task_id}/done")
def recovery_done(
    task_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    surveys.get_recovery(db, me.viewer, task_id)
    values = {"outcome": text(form, "outcome")}
    try:
        with db.begin_nested():
            data = parse(RecoveryDoneIn, {"version": _version(form), **values})
            surveys.complete_recovery(db, me.viewer, task_id, data)
    except (Invalid, Conflict) as exc:
        db.expire_all()
        errors = exc.errors if isinstance(exc, Invalid) else [FieldError("version", STALE)]
        code = 409 if isinstance(exc, Conflict) else 422
        return _recovery_page(
            request, db, me, task_id, status=code, form=Form(values, errors, key="recovery")
        )
    return redirect(request, f"/recovery/{task_id}", "saved")
