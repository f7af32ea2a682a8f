"""Signing in and out, the language switch, and the home page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from kefu.auth import service as auth
from kefu.errors import Invalid
from kefu.i18n import LOCALES, N_
from kefu.scope import count_visible
from kefu.sla import service as calendar_service
from kefu.staff import service as staff_service
from kefu.staff.models import Staff
from kefu.staff.schemas import StaffUpdate
from kefu.units import service as units
from kefu.units.models import Unit
from kefu.web.common import (
    LANG_COOKIE,
    SESSION_COOKIE,
    CurrentMe,
    Db,
    Form,
    MaybeMe,
    PostedForm,
    form_data,
    render,
    request_context,
    safe_next,
    secure_cookies,
    set_cookie,
    text,
    verify_csrf,
)

router = APIRouter()

RawForm = Annotated[FormData, Depends(form_data)]
LANG_MAX_AGE = 365 * 24 * 3600
UNKNOWN_LANGUAGE = N_("Unknown language.")


@router.get("/login")
def login_page(request: Request, me: MaybeMe, next: str = "/") -> Response:
    if me is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"form": Form({"username": ""}), "next": safe_next(next)})


@router.post("/login")
def login(request: Request, db: Db, form: RawForm) -> Response:
    verify_csrf(request, form, None)  # double-submit: the login form has no session yet
    username, target = text(form, "username"), safe_next(text(form, "next"))
    ctx = request_context(request)
    result = auth.authenticate(db, username, text(form, "password"), ctx["remote_addr"] or "")
    if result.staff is None:
        db.commit()  # the failure counts towards lock-out and throttling, even though we refuse
        return render(
            request,
            "login.html",
            {"form": Form({"username": username}), "next": target, "error": result.error},
            status=result.status,
        )
    secret = auth.start_session(
        db,
        result.staff,
        remote_addr=ctx["remote_addr"],
        user_agent=request.headers.get("user-agent"),
        channel_viewer=auth.viewer_for(result.staff, None, channel="web", **ctx),
    )
    response = RedirectResponse(target, status_code=303)
    set_cookie(response, request, SESSION_COOKIE, secret)
    return response


@router.post("/logout")
def logout(request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    auth.end_session(db, request.cookies[SESSION_COOKIE])
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure_cookies(request)
    )
    return response


@router.post("/lang")
def switch_language(request: Request, me: MaybeMe, db: Db, form: RawForm) -> Response:
    verify_csrf(request, form, me)
    locale = text(form, "locale")
    if locale not in LOCALES:
        raise Invalid.field("locale", UNKNOWN_LANGUAGE)
    if me is not None and me.viewer.locale != locale:
        # Saved on the person too, so their choice follows them to other browsers.
        staff_service.update_staff(db, me.viewer, me.id, StaffUpdate(locale=locale))
    response = RedirectResponse(safe_next(text(form, "next")), status_code=303)
    set_cookie(response, request, LANG_COOKIE, locale, max_age=LANG_MAX_AGE)
    return response


@router.get("/")
def home(request: Request, me: CurrentMe, db: Db) -> Response:
    viewer = me.viewer
    counts = {"units": count_visible(db, Unit, viewer), "staff": count_visible(db, Staff, viewer)}
    unit = units.get_unit(db, viewer, me.unit_id)
    # Administrators are told when the holiday data lacks a year in use (issue: SLA calendars).
    warnings = calendar_service.holiday_warnings(db) if viewer.is_admin else []
    return render(request, "home.html", {"counts": counts, "unit": unit, "warnings": warnings})
