"""Tickets with people and with each other: collaborators and merging a duplicate."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from kefu.api.v1.common import created
from kefu.api.v1.deps import CurrentViewer, Db
from kefu.tickets import collaboration, merge
from kefu.tickets.schemas import CollaboratorIn, CollaboratorOut, MergeIn, TicketOut

router = APIRouter(prefix="/tickets", tags=["tickets"])


@router.get(
    "/{ticket_id}/collaborators",
    response_model=list[CollaboratorOut],
    summary="Staff collaborating on the ticket (they see it wherever they work)",
)
def list_collaborators(ticket_id: int, viewer: CurrentViewer, db: Db) -> list[CollaboratorOut]:
    return [
        CollaboratorOut.model_validate(s)
        for s in collaboration.collaborators(db, viewer, ticket_id)
    ]


@router.post(
    "/{ticket_id}/collaborators",
    status_code=201,
    response_model=CollaboratorOut,
    summary="Add a collaborator: a timeline event, and a notification to them",
)
def add_collaborator(
    ticket_id: int, body: CollaboratorIn, request: Request, viewer: CurrentViewer, db: Db
) -> JSONResponse:
    person = collaboration.add_collaborator(db, viewer, ticket_id, body.staff_id)
    return created(
        request,
        CollaboratorOut.model_validate(person),
        f"{request.scope.get('root_path', '')}/tickets/{ticket_id}/collaborators",
    )


@router.delete(
    "/{ticket_id}/collaborators/{staff_id}",
    status_code=204,
    summary="Remove a collaborator",
)
def remove_collaborator(ticket_id: int, staff_id: int, viewer: CurrentViewer, db: Db) -> Response:
    collaboration.remove_collaborator(db, viewer, ticket_id, staff_id)
    return Response(status_code=204)


class MergeOut(BaseModel):
    source: TicketOut
    target: TicketOut


@router.post(
    "/{ticket_id}/merge",
    response_model=MergeOut,
    summary="Merge this duplicate into another ticket of the same customer (closes it)",
)
def merge_ticket(ticket_id: int, body: MergeIn, viewer: CurrentViewer, db: Db) -> MergeOut:
    source, target = merge.merge_ticket(db, viewer, ticket_id, body)
    return MergeOut(
        source=TicketOut.model_validate(source), target=TicketOut.model_validate(target)
    )
