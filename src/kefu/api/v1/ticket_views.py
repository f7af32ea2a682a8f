"""/api/v1/ticket-views: saved views of the agent console (filters of the ticket list)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from kefu.api.v1.common import Cursor, IdempotencyKey, Limit, PageOut, idempotent_create
from kefu.api.v1.deps import CurrentViewer, Db
from kefu.pagination import paginate
from kefu.tickets import saved_views
from kefu.tickets.models import TicketView
from kefu.tickets.schemas import ViewCreate, ViewOut, ViewUpdate

router = APIRouter(prefix="/ticket-views", tags=["tickets"])


@router.get(
    "",
    response_model=PageOut[ViewOut],
    summary="Saved views the caller may use or manage: theirs and those shared with units",
)
def list_views(
    viewer: CurrentViewer, db: Db, limit: Limit = 50, cursor: Cursor = None
) -> PageOut[ViewOut]:
    page = paginate(
        db, saved_views.views(db, viewer), key=TicketView.id, limit=limit, cursor=cursor
    )
    return PageOut[ViewOut](
        items=[ViewOut.model_validate(v) for v in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "",
    status_code=201,
    response_model=ViewOut,
    summary="Save a view; `unit_id` shares it with a unit (supervisors and managers)",
)
def create_view(
    body: ViewCreate,
    request: Request,
    viewer: CurrentViewer,
    db: Db,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create() -> tuple[ViewOut, str]:
        view = saved_views.create_view(db, viewer, body)
        return ViewOut.model_validate(view), (
            f"{request.scope.get('root_path', '')}/ticket-views/{view.id}"
        )

    return idempotent_create(request, db, viewer, idempotency_key, body, create)


@router.get("/{view_id}", response_model=ViewOut)
def get_view(view_id: int, viewer: CurrentViewer, db: Db) -> ViewOut:
    return ViewOut.model_validate(saved_views.get_view(db, viewer, view_id))


@router.patch(
    "/{view_id}", response_model=ViewOut, summary="Rename, refilter or (un)share; send the version"
)
def update_view(view_id: int, body: ViewUpdate, viewer: CurrentViewer, db: Db) -> ViewOut:
    return ViewOut.model_validate(saved_views.update_view(db, viewer, view_id, body))


@router.delete("/{view_id}", status_code=204, response_class=Response)
def delete_view(view_id: int, viewer: CurrentViewer, db: Db) -> Response:
    saved_views.delete_view(db, viewer, view_id)
    return Response(status_code=204)
