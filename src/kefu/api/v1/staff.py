from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from kefu.api.v1.common import Cursor, IdempotencyKey, Limit, PageOut, idempotent_create
from kefu.api.v1.deps import CurrentViewer, Db
from kefu.pagination import paginate
from kefu.staff import queries
from kefu.staff import service as staff_service
from kefu.staff.models import Staff
from kefu.staff.schemas import StaffCreate, StaffOut, StaffUpdate

router = APIRouter(prefix="/staff", tags=["staff"])


def out(staff: Staff) -> StaffOut:
    return StaffOut.model_validate(staff)


@router.get("", response_model=PageOut[StaffOut], summary="Staff the caller sees")
def list_staff(
    viewer: CurrentViewer,
    db: Db,
    limit: Limit = 50,
    cursor: Cursor = None,
    unit_id: Annotated[
        int | None, Query(description="Staff of this unit and the units below it.")
    ] = None,
    role: Annotated[str | None, Query(pattern="^(agent|supervisor|manager|admin)$")] = None,
    q: Annotated[
        str | None, Query(max_length=100, description="Name or username contains.")
    ] = None,
    active: bool | None = None,
) -> PageOut[StaffOut]:
    stmt = queries.staff(db, viewer, unit_id=unit_id, role=role, q=q, active=active)
    page = paginate(db, stmt, key=Staff.id, limit=limit, cursor=cursor)
    return PageOut[StaffOut](items=[out(s) for s in page.items], next_cursor=page.next_cursor)


@router.post("", status_code=201, response_model=StaffOut, summary="Create a staff member")
def create_staff(
    body: StaffCreate,
    request: Request,
    viewer: CurrentViewer,
    db: Db,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create() -> tuple[StaffOut, str]:
        staff = staff_service.create_staff(db, viewer, body)
        return out(staff), f"{request.scope.get('root_path', '')}/staff/{staff.id}"

    return idempotent_create(request, db, viewer, idempotency_key, body, create)


@router.get("/{staff_id}", response_model=StaffOut)
def get_staff(staff_id: int, viewer: CurrentViewer, db: Db) -> StaffOut:
    return out(staff_service.get_staff(db, viewer, staff_id))


@router.patch(
    "/{staff_id}",
    response_model=StaffOut,
    summary="Change a staff member; is_active=false signs them out everywhere",
)
def update_staff(staff_id: int, body: StaffUpdate, viewer: CurrentViewer, db: Db) -> StaffOut:
    return out(staff_service.update_staff(db, viewer, staff_id, body))
