"""Return visits (回访): the queue, outcomes, and answers given on the phone."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from kefu.api.v1.common import Cursor, Limit, PageOut, created
from kefu.api.v1.deps import CurrentViewer, Db
from kefu.clock import now
from kefu.pagination import paginate
from kefu.surveys import service as surveys
from kefu.surveys.schemas import AnswerIn, AnswerOut
from kefu.visits import queries
from kefu.visits import service as visits
from kefu.visits.models import ReturnVisit
from kefu.visits.schemas import OutcomeIn, VisitOut

router = APIRouter(prefix="/return-visits", tags=["return visits"])


@router.get(
    "",
    response_model=PageOut[VisitOut],
    summary="Return visits the caller sees, by due date (the queue)",
)
def list_visits(
    viewer: CurrentViewer,
    db: Db,
    limit: Limit = 50,
    cursor: Cursor = None,
    state: Annotated[
        Literal["scheduled", "done", "failed", "cancelled", "any"], Query()
    ] = "scheduled",
    kind: Annotated[Literal["ticket", "periodic", "recovery"] | None, Query()] = None,
    unit_id: Annotated[int | None, Query(description="Owned by this unit or below.")] = None,
    mine: Annotated[bool, Query(description="Only visits assigned to me.")] = False,
    customer_id: int | None = None,
    ticket_id: int | None = None,
    overdue: Annotated[bool, Query(description="Only visits past their due date.")] = False,
) -> PageOut[VisitOut]:
    stmt = queries.visits(
        db,
        viewer,
        state=None if state == "any" else state,
        kind=kind,
        unit_id=unit_id,
        assignee_id=viewer.staff_id if mine else None,
        customer_id=customer_id,
        ticket_id=ticket_id,
        overdue_at=now() if overdue else None,
    )
    page = paginate(db, stmt, key=(ReturnVisit.due_at, ReturnVisit.id), limit=limit, cursor=cursor)
    return PageOut[VisitOut](
        items=[VisitOut.model_validate(v) for v in page.items], next_cursor=page.next_cursor
    )


@router.get("/{visit_id}", response_model=VisitOut)
def get_visit(visit_id: int, viewer: CurrentViewer, db: Db) -> VisitOut:
    return VisitOut.model_validate(visits.get_visit(db, viewer, visit_id))


@router.post(
    "/{visit_id}/outcome",
    response_model=VisitOut,
    summary="Record a call or trip: reached (with what the customer said) or not",
)
def record_outcome(visit_id: int, body: OutcomeIn, viewer: CurrentViewer, db: Db) -> VisitOut:
    return VisitOut.model_validate(visits.record_outcome(db, viewer, visit_id, body))


@router.post(
    "/{visit_id}/survey-answer",
    status_code=201,
    response_model=AnswerOut,
    summary="Survey answers the customer gave on the phone",
)
def phone_answer(
    visit_id: int, body: AnswerIn, request: Request, viewer: CurrentViewer, db: Db
) -> JSONResponse:
    answer = surveys.answer_by_phone(db, viewer, visit_id, body)
    root = request.scope.get("root_path", "")
    return created(request, AnswerOut.model_validate(answer), f"{root}/surveys/answers/{answer.id}")
