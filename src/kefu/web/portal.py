"""The customer portal's pages: sign-in, the invitation link, and (for staff) inviting a
contact from the customer's page. The ticket pages are in `web/portal_tickets.py`.

A portal session has its own cookie (`kefu_portal`, path /portal, HttpOnly, SameSite=Lax,
Secure over https) and its own CSRF token; staff sessions are never read here.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from kefu.customers.models import Contact
from kefu.errors import Forbidden, Invalid
from kefu.i18n import LOCALES, N_
from kefu.portal import service as portal
from kefu.portal.schemas import SetPassword
from kefu.scope import Viewer
from kefu.web.common import (
    CSRF_COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    CSRF_REFUSED,
    LANG_COOKIE,
    CurrentMe,
    Db,
    Form,
    PostedForm,
    form_data,
    parse,
    render,
    request_context,
    safe_next,
    secure_cookies,
    set_cookie,
    text,
)

router = APIRouter()

PORTAL_COOKIE = "kefu_portal"
PORTAL_PATH = "/portal"
LANG_MAX_AGE = 365 * 24 * 3600
RawForm = Annotated[FormData, Depends(form_data)]
NOTICES = {
    "welcome": N_("Your password is set. Welcome!"),
    "created": N_("Your request has been submitted."),
    "replied": N_("Your reply has been sent."),
    "confirmed": N_("Thank you for confirming. The request is closed."),
    "reopened": N_("The request is open again."),
}


class PortalLoginRequired(Exception):
    """A signed-out request to a portal page: answered with a redirect to /portal/login."""


@dataclass(frozen=True)
class Contactee:
    """The signed-in contact, as portal pages need them."""

    viewer: Viewer
    name: str
    customer_name: str
    csrf: str


def signed_in_contact(request: Request, db: Db) -> Contactee | None:
    secret = request.cookies.get(PORTAL_COOKIE)
    ctx = request_context(request)
    found = (
        portal.session_viewer(
            db, secret, request_id=ctx["request_id"], remote_addr=ctx["remote_addr"]
        )
        if secret
        else None
    )
    if found is None:
        return None
    # Plain values: error pages render after the request's session has closed.
    who = Contactee(found.viewer, found.contact.name, found.customer.name, found.session.csrf_token)
    request.state.contact = who
    # The language switch (cookie) wins; else the contact's preferred language.
    request.state.locale = request.state.cookie_locale or found.contact.locale
    return who


MaybeContact = Annotated[Contactee | None, Depends(signed_in_contact)]


def require_contact(who: MaybeContact) -> Contactee:
    if who is None:
        raise PortalLoginRequired()
    return who


CurrentContact = Annotated[Contactee, Depends(require_contact)]


def verify(request: Request, form: FormData, who: Contactee | None) -> None:
    """Signed in: the portal session's token. Signed out: the double-submit cookie."""
    sent = str(form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or "")
    expected = who.csrf if who is not None else request.cookies.get(CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden(CSRF_REFUSED)


def checked(
    request: Request, who: CurrentContact, form: Annotated[FormData, Depends(form_data)]
) -> FormData:
    verify(request, form, who)
    return form


ContactForm = Annotated[FormData, Depends(checked)]


def page(
    request: Request,
    name: str,
    ctx: dict[str, Any] | None = None,
    *,
    status: int = 200,
    fragment: str = "content",
) -> Response:
    """A portal page: the portal's layout, the contact's CSRF token when signed in."""
    who: Contactee | None = getattr(request.state, "contact", None)
    full: dict[str, Any] = {
        "who": who,
        "portal_notice": NOTICES.get(request.query_params.get("notice", "")),
    }
    if who is not None:
        full["csrf"] = who.csrf
    full.update(ctx or {})
    return render(request, name, full, status=status, fragment=fragment)


def set_portal_cookie(response: Response, request: Request, secret: str) -> None:
    response.set_cookie(
        PORTAL_COOKIE,
        secret,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        path=PORTAL_PATH,
    )


def local(value: str) -> str:
    """A `next` that stays inside the portal."""
    target = safe_next(value)
    return target if target == PORTAL_PATH or target.startswith(PORTAL_PATH + "/") else PORTAL_PATH


# --- signing in and out -------------------------------------------------------------------


@router.get("/portal/login")
def login_page(request: Request, who: MaybeContact, next: str = PORTAL_PATH) -> Response:
    if who is not None:
        return RedirectResponse(local(next), status_code=303)
    return page(request, "portal/login.html", {"form": Form({"login": ""}), "next": local(next)})


@router.post("/portal/login")
def login(request: Request, db: Db, form: RawForm) -> Response:
    verify(request, form, None)  # double-submit: no session yet
    login_, target = text(form, "login"), local(text(form, "next"))
    ctx = request_context(request)
    result = portal.authenticate(db, login_, text(form, "password"), ctx["remote_addr"] or "")
    if result.account is None:
        db.commit()  # the failure counts towards lock-out and throttling, even though we refuse
        return page(
            request,
            "portal/login.html",
            {"form": Form({"login": login_}), "next": target, "error": result.error},
            status=result.status,
        )
    secret = portal.start_session(
        db,
        result.account,
        remote_addr=ctx["remote_addr"],
        user_agent=request.headers.get("user-agent"),
        request_id=ctx["request_id"],
    )
    response = RedirectResponse(target, status_code=303)
    set_portal_cookie(response, request, secret)
    return response


@router.post("/portal/logout")
def logout(request: Request, who: CurrentContact, db: Db, form: ContactForm) -> Response:
    portal.end_session(db, request.cookies[PORTAL_COOKIE])
    response = RedirectResponse("/portal/login", status_code=303)
    response.delete_cookie(
        PORTAL_COOKIE,
        path=PORTAL_PATH,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )
    return response


@router.post("/portal/lang")
def switch_language(request: Request, who: MaybeContact, db: Db, form: RawForm) -> Response:
    verify(request, form, who)
    locale = text(form, "locale")
    if locale not in LOCALES:
        raise Invalid.field("locale", N_("Unknown language."))
    if who is not None:
        portal.set_locale(db, who.viewer, locale)  # their preferred language, kept
    response = RedirectResponse(local(text(form, "next")), status_code=303)
    set_cookie(response, request, LANG_COOKIE, locale, max_age=LANG_MAX_AGE)
    return response


# --- the invitation link: set the password ------------------------------------------------


@router.get("/portal/welcome/{token}")
def welcome_page(token: str, request: Request, db: Db) -> Response:
    found = portal.open_invitation(db, token)  # used, expired, replaced: a page saying so
    request.state.locale = request.state.cookie_locale or found.contact.locale
    return page(
        request,
        "portal/welcome.html",
        {"form": Form({"password": "", "confirm": ""}), "found": found, "token": token},
    )


@router.post("/portal/welcome/{token}")
def set_password(token: str, request: Request, db: Db, form: RawForm) -> Response:
    verify(request, form, None)
    found = portal.open_invitation(db, token)
    request.state.locale = request.state.cookie_locale or found.contact.locale
    ctx = request_context(request)
    try:
        with db.begin_nested():
            data = parse(
                SetPassword, {"password": text(form, "password"), "confirm": text(form, "confirm")}
            )
            done = portal.accept_invitation(db, token, data, **ctx)
    except Invalid as exc:
        db.expire_all()
        bad = Form({"password": "", "confirm": ""}, exc.errors)
        return page(
            request,
            "portal/welcome.html",
            {"form": bad, "found": found, "token": token},
            status=422,
        )
    secret = portal.start_session(
        db,
        done.account,
        remote_addr=ctx["remote_addr"],
        user_agent=request.headers.get("user-agent"),
        request_id=ctx["request_id"],
    )
    response = RedirectResponse("/portal?notice=welcome", status_code=303)
    set_portal_cookie(response, request, secret)
    return response


# --- staff: invite a contact from the customer's page ---------------------------------------


@router.post("/customers/{customer_id}/contacts/{contact_id}/portal-invite")
def invite(
    customer_id: int, contact_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    base = str(request.base_url).rstrip("/")
    try:
        with db.begin_nested():
            made = portal.invite(db, me.viewer, customer_id, contact_id, base_url=base)
    except Invalid as exc:
        db.expire_all()
        return render(
            request,
            "portal/invited.html",
            {"customer_id": customer_id, "errors": Form({}, exc.errors).general_errors()},
            status=422,
        )
    contact = db.get(Contact, contact_id)
    return render(
        request,
        "portal/invited.html",
        {
            "customer_id": customer_id,
            "contact": contact,
            "account": made.account,
            "url": f"{base}/portal/welcome/{made.token}",
            "expires_at": made.row.expires_at,
            "errors": [],
        },
    )
