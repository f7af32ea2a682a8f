from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kefu.api.v1 import problems
from kefu.api.v1.deps import CurrentViewer, Db, request_context
from kefu.auth import service as auth
from kefu.validation import Input

router = APIRouter(prefix="/auth", tags=["auth"])


class TokenRequest(Input):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime | None


class IntegrationTokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    staff_id: int
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


@router.post(
    "/token",
    response_model=TokenOut,
    summary="Exchange a username and password for a short-lived Bearer token",
)
def create_token(body: TokenRequest, request: Request, db: Db) -> TokenOut | JSONResponse:
    ctx = request_context(request)
    result = auth.authenticate(db, body.username, body.password, ctx["remote_addr"] or "")
    if result.staff is None:
        # The failure is committed (lock-out and throttling count it); then we refuse.
        db.commit()
        return problems.sign_in_failed(request, result.status, result.error)
    viewer = auth.viewer_for(result.staff, None, channel="api", **ctx)
    plain, token = auth.issue_token(db, viewer, result.staff, kind="access")
    return TokenOut(access_token=plain, expires_at=token.expires_at)


@router.get("/me", summary="Who the token belongs to")
def me(viewer: CurrentViewer) -> dict[str, object]:
    return {
        "staff_id": viewer.staff_id,
        "username": viewer.username,
        "unit_id": viewer.unit_id,
        "roles": sorted(viewer.roles),
        "locale": viewer.locale,
    }
