from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from kefu.api.v1.common import Cursor, IdempotencyKey, Limit, PageOut, idempotent_create
from kefu.api.v1.deps import CurrentViewer, Db
from kefu.pagination import paginate
from kefu.units import queries
from kefu.units import service as units
from kefu.units.models import Unit
from kefu.units.schemas import UnitCreate, UnitOut, UnitUpdate

router = APIRouter(prefix="/units", tags=["units"])


def out(unit: Unit) -> UnitOut:
    return UnitOut(
        id=unit.id,
        name=unit.name,
        parent_id=unit.parent_id,
        region_code=unit.region_code,
        timezone=unit.timezone,
        function_names=unit.function_names,
        depth=unit.depth,
        level=units.level_of(unit),
        path=unit.path,
        sort_order=unit.sort_order,
        is_active=unit.is_active,
        created_at=unit.created_at,
        updated_at=unit.updated_at,
    )


@router.get("", response_model=PageOut[UnitOut], summary="Units the caller sees, in tree order")
def list_units(
    viewer: CurrentViewer,
    db: Db,
    limit: Limit = 50,
    cursor: Cursor = None,
    parent_id: Annotated[int | None, Query(description="Only the children of this unit.")] = None,
    q: Annotated[str | None, Query(max_length=100, description="Name contains.")] = None,
    region_code: Annotated[str | None, Query(max_length=12, pattern=r"^\d+$")] = None,
    active: bool | None = None,
) -> PageOut[UnitOut]:
    stmt = queries.units(viewer, parent_id=parent_id, q=q, region_code=region_code, active=active)
    page = paginate(db, stmt, key=Unit.path, limit=limit, cursor=cursor)
    return PageOut[UnitOut](items=[out(u) for u in page.items], next_cursor=page.next_cursor)


@router.post("", status_code=201, response_model=UnitOut, summary="Create a unit")
def create_unit(
    body: UnitCreate,
    request: Request,
    viewer: CurrentViewer,
    db: Db,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create() -> tuple[UnitOut, str]:
        unit = units.create_unit(db, viewer, body)
        return out(unit), f"{request.scope.get('root_path', '')}/units/{unit.id}"

    return idempotent_create(request, db, viewer, idempotency_key, body, create)


@router.get("/{unit_id}", response_model=UnitOut)
def get_unit(unit_id: int, viewer: CurrentViewer, db: Db) -> UnitOut:
    return out(units.get_unit(db, viewer, unit_id))


@router.patch(
    "/{unit_id}",
    response_model=UnitOut,
    summary="Change a unit; a new parent_id moves its whole subtree",
)
def update_unit(unit_id: int, body: UnitUpdate, viewer: CurrentViewer, db: Db) -> UnitOut:
    return out(units.update_unit(db, viewer, unit_id, body))
