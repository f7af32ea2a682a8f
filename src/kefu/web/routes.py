"""Mounts the pages and renders every error of a page once, as a page or an HTMX toast."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from kefu.errors import HTTP_TITLES, DomainError, NotFound
from kefu.i18n import N_
from kefu.web import (
    audit,
    auth,
    calendars,
    complaints,
    console,
    customers,
    loyalty,
    mail,
    portal_tickets,
    routing,
    satisfaction,
    service_levels,
    staff,
    survey_public,
    survey_templates,
    tiering,
    tokens,
    units,
    visits,
)
from kefu.web import channels as channel_pages
from kefu.web import customer_import as import_pages
from kefu.web import portal as portal_pages
from kefu.web import ticket_fields as ticket_field_pages
from kefu.web import ticket_links as ticket_link_pages
from kefu.web import tickets as ticket_pages
from kefu.web.common import LoginRequired, here, is_htmx, render

Messages = list[tuple[str, dict[str, Any]]]  # (msgid, params), translated by the template
NOTHING_HERE = N_("There is nothing here, or it is not yours to see.")


def install(app: FastAPI) -> None:
    # Before customers: /customers/import is not /customers/{customer_id}.
    app.include_router(import_pages.router, include_in_schema=False)
    for module in (
        auth,
        units,
        staff,
        audit,
        tokens,
        customers,
        tiering,
        service_levels,
        calendars,
        routing,
    ):
        app.include_router(module.router, include_in_schema=False)
    # Before the ticket pages: /tickets/new/fields is not /tickets/{ticket_id}/….
    app.include_router(ticket_field_pages.router, include_in_schema=False)
    app.include_router(ticket_link_pages.router, include_in_schema=False)
    app.include_router(console.router, include_in_schema=False)
    app.include_router(ticket_pages.router, include_in_schema=False)
    app.include_router(mail.router, include_in_schema=False)
    for module in (visits, satisfaction, survey_public, complaints, loyalty, survey_templates):
        app.include_router(module.router, include_in_schema=False)
    app.include_router(channel_pages.router, include_in_schema=False)
    app.include_router(portal_pages.router, include_in_schema=False)
    app.include_router(portal_tickets.router, include_in_schema=False)
    app.add_exception_handler(LoginRequired, on_login_required)
    app.add_exception_handler(portal_pages.PortalLoginRequired, on_portal_login_required)
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_bad_request)
    app.add_exception_handler(Exception, on_unexpected)  # logged by the server, then this page


def error_page(request: Request, status: int, title: str, messages: Messages) -> Response:
    """A full error page; for HTMX a toast appended to #toasts (the target stays as it was)."""
    ctx: dict[str, Any] = {"status": status, "title": title, "messages": messages}
    name = "error.html"
    if request.url.path == "/portal" or request.url.path.startswith("/portal/"):
        # The portal's own layout; its signed-in contact, if the dependency found one.
        name = "portal/error.html"
        ctx["who"] = getattr(request.state, "contact", None)
        if ctx["who"] is not None:
            ctx["csrf"] = ctx["who"].csrf
    if is_htmx(request):
        headers = {"HX-Retarget": "#toasts", "HX-Reswap": "beforeend"}
        return render(request, name, ctx, status=status, fragment="toast", headers=headers)
    return render(request, name, ctx, status=status)


async def on_login_required(request: Request, exc: Exception) -> Response:
    # Only a page one can GET again is worth coming back to.
    target = "/login"
    if request.method == "GET":
        target += "?" + urlencode({"next": here(request)})
    if is_htmx(request):
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def on_portal_login_required(request: Request, exc: Exception) -> Response:
    target = "/portal/login"
    if request.method == "GET":
        target += "?" + urlencode({"next": here(request)})
    if is_htmx(request):
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    # (msgid, params) pairs: the template translates them once render() has set the locale.
    messages: Messages = [(e.message, e.params) for e in exc.errors]
    if exc.message != exc.title:
        messages.insert(0, (exc.message, exc.params))
    elif isinstance(exc, NotFound):
        messages.insert(0, (NOTHING_HERE, {}))
    return error_page(request, exc.status, exc.title, messages)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    title = HTTP_TITLES.get(exc.status_code, N_("Error"))
    messages: Messages = [(NOTHING_HERE, {})] if exc.status_code == 404 else []
    return error_page(request, exc.status_code, title, messages)


async def on_bad_request(request: Request, exc: Exception) -> Response:
    # Pages take ids in the path; a malformed one names nothing that exists.
    return error_page(request, 404, NotFound.title, [(NOTHING_HERE, {})])


async def on_unexpected(request: Request, exc: Exception) -> Response:
    return error_page(request, 500, HTTP_TITLES[500], [])
