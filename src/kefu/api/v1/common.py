"""Shapes and helpers shared by the API routers: pages, created responses, idempotency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

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
    # A contact's keys are their own (a contact has no staff id).
    principal = idem.principal(viewer)
    endpoint = f"{request.method} {request.url.path}"
    digest = idem.fingerprint(payload.model_dump(mode="json"))
    stored = idem.find(db, principal, endpoint, key, digest)
    if stored is None:
        body, location = create()
        stored = idem.Stored(201, plain(body), location)
        try:
            idem.remember(db, principal, endpoint, key, digest, stored)
        except IntegrityError:
            # A concurrent first try won; our work must not stand beside it: the whole
            # transaction goes (so no savepoint is needed around the key).
            db.rollback()
            stored = idem.find(db, principal, endpoint, key, digest)
            if stored is None:
                raise
        else:
            return _response(stored, replayed=False)
    return _response(stored, replayed=True)


def _response(stored: idem.Stored, *, replayed: bool) -> JSONResponse:
    headers: dict[str, Any] = {"Idempotent-Replayed": "true" if replayed else "false"}
    if stored.location:
        headers["Location"] = stored.location
    return JSONResponse(stored.body, status_code=stored.status_code, headers=headers)
