"""Integration tokens (administrators): create (the value is shown once), list, revoke."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field
from sqlalchemy.orm import Session

from kefu.auth import service as auth
from kefu.clock import now
from kefu.errors import Invalid
from kefu.i18n import N_
from kefu.staff import service as staff_service
from kefu.validation import Input, Name
from kefu.web.common import (
    CurrentMe,
    Db,
    Form,
    Me,
    PostedForm,
    parse,
    redirect,
    render,
    require_role,
    text,
)

router = APIRouter()

LIFETIMES = [
    ("0", N_("Never expires")),
    ("30", N_("30 days")),
    ("90", N_("90 days")),
    ("365", N_("1 year")),
]


class TokenForm(Input):
    """What the web form asks; the token acts as the administrator who makes it."""

    name: Name
    days: int = Field(0, ge=0, le=3650)


def _page(
    request: Request,
    db: Session,
    me: Me,
    form: Form | None = None,
    plain: str | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "tokens/list.html",
        {
            "tokens": auth.list_tokens(db, me.viewer),
            "form": form or Form({"name": "", "days": "0"}),
            "lifetimes": LIFETIMES,
            "plain": plain,
            "now": now(),
        },
        status=status,
    )


@router.get("/tokens")
def tokens_page(request: Request, me: CurrentMe, db: Db) -> Response:
    require_role(me, "admin")
    return _page(request, db, me)


@router.post("/tokens")
def create_token(request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    require_role(me, "admin")
    values = {"name": text(form, "name"), "days": text(form, "days") or "0"}
    try:
        data = parse(TokenForm, values)
    except Invalid as exc:
        return _page(request, db, me, Form(values, exc.errors), status=422)
    owner = staff_service.get_staff(db, me.viewer, me.id)
    expires = now() + timedelta(days=data.days) if data.days else None
    plain, _token = auth.issue_token(
        db, me.viewer, owner, kind="integration", name=data.name, expires_at=expires
    )
    # Shown in this answer only (never stored, never in a URL); hence no redirect here.
    return _page(request, db, me, plain=plain)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(
    token_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    require_role(me, "admin")
    auth.revoke_token(db, me.viewer, token_id)
    return redirect(request, "/tokens", "revoked")
