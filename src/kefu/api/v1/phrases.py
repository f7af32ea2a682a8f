"""/api/v1/phrases: the standard phrase library and phrases filled in for a ticket."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from kefu.api.v1.common import Cursor, IdempotencyKey, Limit, PageOut, idempotent_create
from kefu.api.v1.deps import CurrentViewer, Db
from kefu.knowledge import service as phrases
from kefu.knowledge.models import Phrase
from kefu.knowledge.schemas import PhraseCreate, PhraseOut, PhraseUpdate, RenderedOut
from kefu.pagination import paginate

router = APIRouter(prefix="/phrases", tags=["knowledge"])


@router.get(
    "",
    response_model=PageOut[PhraseOut],
    summary="Standard phrases the caller may use or manage (global, personal, units')",
)
def list_phrases(
    viewer: CurrentViewer,
    db: Db,
    limit: Limit = 50,
    cursor: Cursor = None,
    kind: Literal["personal", "unit", "global"] | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> PageOut[PhraseOut]:
    stmt = phrases.phrases(db, viewer, kind=kind, q=q)
    page = paginate(db, stmt, key=Phrase.id, limit=limit, cursor=cursor)
    return PageOut[PhraseOut](
        items=[PhraseOut.model_validate(p) for p in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "",
    status_code=201,
    response_model=PhraseOut,
    summary="Write a phrase: personal (anyone), unit (supervisors), global (administrators)",
)
def create_phrase(
    body: PhraseCreate,
    request: Request,
    viewer: CurrentViewer,
    db: Db,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create() -> tuple[PhraseOut, str]:
        phrase = phrases.create_phrase(db, viewer, body)
        return PhraseOut.model_validate(phrase), (
            f"{request.scope.get('root_path', '')}/phrases/{phrase.id}"
        )

    return idempotent_create(request, db, viewer, idempotency_key, body, create)


@router.get("/{phrase_id}", response_model=PhraseOut)
def get_phrase(phrase_id: int, viewer: CurrentViewer, db: Db) -> PhraseOut:
    return PhraseOut.model_validate(phrases.get_phrase(db, viewer, phrase_id))


@router.patch("/{phrase_id}", response_model=PhraseOut, summary="Change; send the version")
def update_phrase(phrase_id: int, body: PhraseUpdate, viewer: CurrentViewer, db: Db) -> PhraseOut:
    return PhraseOut.model_validate(phrases.update_phrase(db, viewer, phrase_id, body))


@router.delete("/{phrase_id}", status_code=204, response_class=Response)
def delete_phrase(phrase_id: int, viewer: CurrentViewer, db: Db) -> Response:
    phrases.delete_phrase(db, viewer, phrase_id)
    return Response(status_code=204)


@router.get(
    "/{phrase_id}/rendered",
    response_model=RenderedOut,
    summary="The phrase with its placeholders filled in for one ticket (both in scope)",
)
def rendered(
    phrase_id: int,
    ticket_id: Annotated[int, Query(description="The ticket the reply is for.")],
    viewer: CurrentViewer,
    db: Db,
) -> RenderedOut:
    text = phrases.render_phrase(db, viewer, phrase_id, ticket_id)
    return RenderedOut(phrase_id=phrase_id, ticket_id=ticket_id, text=text)
