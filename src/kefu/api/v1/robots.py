"""Group-chat robots of units (WeCom, DingTalk, Feishu): managers and supervisors of the
unit's subtree, admins everywhere."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from kefu.api.v1.common import IdempotencyKey, PageOut, idempotent_create
from kefu.api.v1.deps import CurrentViewer, Db
from kefu.channels import service
from kefu.channels.schemas import RobotIn, RobotOut, RobotUpdate

router = APIRouter(prefix="/robots", tags=["robots"])


@router.get("", response_model=PageOut[RobotOut], summary="Robots of the units you see")
def list_robots(
    viewer: CurrentViewer,
    db: Db,
    unit_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(pattern="^[0-9]{1,18}$")] = None,
) -> PageOut[RobotOut]:
    rows = service.list_robots(
        db, viewer, unit_id=unit_id, after_id=int(cursor) if cursor else None, limit=limit + 1
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return PageOut[RobotOut](
        items=[RobotOut.model_validate(r) for r in rows],
        next_cursor=str(rows[-1].id) if more and rows else None,
    )


@router.post("", status_code=201, response_model=RobotOut, summary="Add a robot to a unit")
def create_robot(
    body: RobotIn,
    request: Request,
    viewer: CurrentViewer,
    db: Db,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create() -> tuple[RobotOut, str]:
        robot = service.create_robot(db, viewer, body)
        return RobotOut.model_validate(robot), f"/api/v1/robots/{robot.id}"

    return idempotent_create(request, db, viewer, idempotency_key, body, create)  # type: ignore[arg-type]


@router.get("/{robot_id}", response_model=RobotOut)
def get_robot(robot_id: int, viewer: CurrentViewer, db: Db) -> RobotOut:
    return RobotOut.model_validate(service.get_robot(db, viewer, robot_id))


@router.patch("/{robot_id}", response_model=RobotOut)
def update_robot(robot_id: int, body: RobotUpdate, viewer: CurrentViewer, db: Db) -> RobotOut:
    return RobotOut.model_validate(service.update_robot(db, viewer, robot_id, body))


@router.delete("/{robot_id}", status_code=204)
def delete_robot(robot_id: int, viewer: CurrentViewer, db: Db) -> Response:
    service.delete_robot(db, viewer, robot_id)
    return Response(status_code=204)
