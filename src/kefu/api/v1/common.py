"""Shapes and helpers shared by the API routers: pages, created responses, idempotency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from kefu.errors import Conflict
from kefu.i18n import N_
from kefu.idempotency import service as idem
from kefu.pagination import MAX_LIMIT
from kefu.scope import Viewer

T = TypeVar("T")


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
Cursor = Annotated[
    str | None, Query(max_length=500, description="`next_cursor` of the page before.")
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retrying with the same key returns the first "
        "answer instead of creating again (kept 24 hours).",
    ),
]


def plain(body: BaseModel) -> Any:
    """A response model as JSON-ready data (what `jsonable_encoder` gives, done by
    pydantic's core alone, several times faster)."""
    return body.model_dump(mode="json", by_alias=True)


def created(request: Request, body: BaseModel, location: str) -> JSONResponse:
    return JSONResponse(plain(body), status_code=201, headers={"Location": location})


def idempotent_create(
    request: Request,
    db: Session,
    viewer: Viewer,
    key: str | None,
    payload: BaseModel,
    create: Callable[[], tuple[BaseModel, str]],
) -> JSONResponse:
    """Run `create` once per (caller, endpoint, Idempotency-Key); replay on a retry."""
    if key is None:
        body, location = create()
        return created(request, body, location)
    key = idem.check_key(key)
    principal = idem.principal(viewer)
    endpoint = f"{request.method} {request.url.path}"
    digest = idem.fingerprint(payload.model_dump(mode="json"))
    # The key is taken before the work (the same mechanism as the ticket intake's groups):
    # a concurrent first try waits here for the other's commit, then replays its answer.
    if idem.claim_many(db, principal, endpoint, {key: digest}):
        body, location = create()  # refused: the rollback lets the key go with the rest
        stored = idem.Stored(201, plain(body), location)
        idem.fill_many(db, principal, endpoint, {key: stored})
        return _response(stored, replayed=False)
    row = idem.find_many(db, principal, endpoint, [key]).get(key)
    if row is None:  # kept, then expired meanwhile: a fresh try takes it over
        raise Conflict(N_("Someone else is using this Idempotency-Key right now; try again."))
    return _response(idem.replay(row, digest), replayed=True)


def _response(stored: idem.Stored, *, replayed: bool) -> JSONResponse:
    headers: dict[str, Any] = {"Idempotent-Replayed": "true" if replayed else "false"}
    if stored.location:
        headers["Location"] = stored.location
    return JSONResponse(stored.body, status_code=stored.status_code, headers=headers)
