"""Complaints: the workflow beside a complaint ticket, and the complaint register."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from kefu.api.v1.common import Cursor, Limit, PageOut
from kefu.api.v1.deps import CurrentViewer, Db
from kefu.complaints import queries
from kefu.complaints import service as complaints
from kefu.complaints.models import Complaint
from kefu.complaints.schemas import CauseOut, ComplaintOut, ComplaintUpdate, DecisionIn, VerifyIn
from kefu.pagination import paginate
from kefu.units import service as units

router = APIRouter(prefix="/complaints", tags=["complaints"])


@router.get("/causes", response_model=list[CauseOut], summary="The root causes to choose from")
def list_causes(request: Request, viewer: CurrentViewer, db: Db) -> list[CauseOut]:
    english = (getattr(request.state, "accept_locale", None) or viewer.locale) == "en"
    return [
        CauseOut(code=c.code, name=c.name_en if english else c.name_zh)
        for c in complaints.causes(db)
    ]


@router.get(
    "/register",
    summary="Complaints per 100 customers of a unit's subtree, by sub-unit, cause or month",
)
def register(
    viewer: CurrentViewer,
    db: Db,
    unit_id: int,
    start: date,
    end: date,
    by: Annotated[Literal["unit", "cause", "month"], Query()] = "unit",
) -> dict[str, Any]:
    unit = units.get_unit(db, viewer, unit_id)
    rows = queries.register(db, unit, start, end, by)
    return {"unit_id": unit.id, "by": by, "items": [r.as_dict() for r in rows]}


@router.get("", response_model=PageOut[ComplaintOut], summary="Complaints, newest first")
def list_complaints(
    viewer: CurrentViewer,
    db: Db,
    limit: Limit = 50,
    cursor: Cursor = None,
    open: Annotated[bool, Query(description="Only those not yet verified.")] = False,
    severity: Annotated[int | None, Query(ge=1, le=3)] = None,
    cause_code: Annotated[str | None, Query(max_length=40)] = None,
    customer_id: int | None = None,
    pending_compensation: bool = False,
) -> PageOut[ComplaintOut]:
    stmt = queries.complaints(
        db,
        viewer,
        open_only=open,
        severity=severity,
        cause_code=cause_code,
        customer_id=customer_id,
        pending_compensation=pending_compensation,
    )
    page = paginate(db, stmt, key=Complaint.id, limit=limit, cursor=cursor, descending=True)
    return PageOut[ComplaintOut](
        items=[ComplaintOut.model_validate(c) for c in page.items], next_cursor=page.next_cursor
    )


@router.get("/{complaint_id}", response_model=ComplaintOut)
def get_complaint(complaint_id: int, viewer: CurrentViewer, db: Db) -> ComplaintOut:
    return ComplaintOut.model_validate(complaints.get_complaint(db, viewer, complaint_id))


@router.patch(
    "/{complaint_id}",
    response_model=ComplaintOut,
    summary="Severity, root cause (a repeat raises the severity), remedy, compensation",
)
def update_complaint(
    complaint_id: int, body: ComplaintUpdate, viewer: CurrentViewer, db: Db
) -> ComplaintOut:
    return ComplaintOut.model_validate(complaints.update(db, viewer, complaint_id, body))


@router.post(
    "/{complaint_id}/compensation",
    response_model=ComplaintOut,
    summary="Approve or reject a pending compensation (within your authority)",
)
def decide(complaint_id: int, body: DecisionIn, viewer: CurrentViewer, db: Db) -> ComplaintOut:
    return ComplaintOut.model_validate(complaints.decide(db, viewer, complaint_id, body))


@router.post(
    "/{complaint_id}/verify",
    response_model=ComplaintOut,
    summary="Verify that the remedy worked",
)
def verify(complaint_id: int, body: VerifyIn, viewer: CurrentViewer, db: Db) -> ComplaintOut:
    return ComplaintOut.model_validate(complaints.verify(db, viewer, complaint_id, body))
