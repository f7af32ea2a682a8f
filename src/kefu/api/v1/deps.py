"""Dependencies of every API route: the transaction, the caller, the language."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from kefu.auth import service as auth
from kefu.db import unit_of_work
from kefu.errors import Unauthorized
from kefu.i18n import N_
from kefu.portal.service import TOKEN_PREFIX
from kefu.scope import Viewer


def get_db(request: Request) -> Iterator[Session]:
    """The request's unit of work: committed before the response leaves, else rolled back."""
    write = request.method not in ("GET", "HEAD", "OPTIONS")
    with unit_of_work(request.app.state.sessionmaker, write=write) as session:
        yield session


Db = Annotated[Session, Depends(get_db, scope="function")]


def request_context(request: Request) -> dict[str, str | None]:
    """Where a request comes from, for the audit log (id set by RequestIdMiddleware)."""
    rid = getattr(request.state, "request_id", None) or uuid.uuid4().hex
    return {"request_id": rid, "remote_addr": request.client.host if request.client else None}


async def language(request: Request) -> str | None:
    """Accept-Language, as the locale middleware read it (None when absent)."""
    return getattr(request.state, "accept_locale", None)


NO_TOKEN = N_("Send a Bearer token in the Authorization header.")


def bearer_token(authorization: str | None, missing: str = NO_TOKEN) -> str:
    """The token of an `Authorization: Bearer …` header (`missing`: what to say without)."""
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Unauthorized(missing)
    return credentials.strip()


UNKNOWN_TOKEN = N_("The token is unknown, expired or revoked.")
CONTACT_TOKEN = N_("This is a contact token: it opens the contact API (/api/v1/portal) only.")


def refused_token(token: str) -> Unauthorized:
    """Why a token opens nothing here (a contact's token is named as such)."""
    return Unauthorized(CONTACT_TOKEN if token.startswith(TOKEN_PREFIX) else UNKNOWN_TOKEN)


def current_viewer(
    request: Request,
    db: Db,
    chosen: Annotated[str | None, Depends(language)],
    authorization: Annotated[str | None, Header()] = None,
) -> Viewer:
    token = bearer_token(authorization)
    viewer = auth.token_viewer(db, token, **request_context(request))
    if viewer is None:
        raise refused_token(token)
    if chosen is None:
        request.state.locale = viewer.locale  # the person's own choice, for error texts
    return viewer


CurrentViewer = Annotated[Viewer, Depends(current_viewer)]
