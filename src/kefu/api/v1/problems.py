"""RFC 9457 problem documents, in the caller's language, naming each bad field."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kefu.errors import HTTP_TITLES, DomainError, FieldError
from kefu.i18n import DEFAULT_LOCALE, N_, gettext, set_locale
from kefu.validation import pydantic_errors

MEDIA_TYPE = "application/problem+json"


def render_field_errors(errors: list[FieldError]) -> list[dict[str, str]]:
    return [{"field": e.field, "message": _fmt(e.message, e.params)} for e in errors]


def _fmt(msgid: str, params: dict[str, Any]) -> str:
    try:
        return gettext(msgid, **params)
    except (KeyError, IndexError):
        return gettext(msgid)


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    type_: str = "about:blank",
    errors: list[FieldError] | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": gettext(title), "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = render_field_errors(errors)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _use_request_locale(request: Request) -> None:
    set_locale(getattr(request.state, "locale", None) or DEFAULT_LOCALE)


async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    _use_request_locale(request)
    detail = _fmt(exc.message, exc.params) if exc.message != exc.title else None
    if exc.errors and detail is None:
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in render_field_errors(exc.errors))
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return problem(exc.status, exc.title, detail, exc.type, exc.errors, request.url.path, headers)


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    _use_request_locale(request)
    errors = pydantic_errors(exc.errors())
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in render_field_errors(errors))
    return problem(
        422, N_("Invalid input"), detail, "/problems/validation", errors, request.url.path
    )


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    _use_request_locale(request)
    title = HTTP_TITLES.get(exc.status_code, N_("Error"))
    if exc.status_code == 400 and "parsing the body" in str(exc.detail):
        # Undecodable bytes (e.g. GBK sent as JSON) never reach validation; name the body.
        errors = [FieldError("body", N_("The body must be JSON encoded as UTF-8."))]
        return problem(400, title, None, "/problems/validation", errors, request.url.path)
    return problem(
        exc.status_code,
        title,
        None,
        "about:blank",
        None,
        request.url.path,
        dict(exc.headers) if exc.headers else None,
    )


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    _use_request_locale(request)
    return problem(500, N_("Internal error"), None, "about:blank", None, request.url.path)


def sign_in_failed(request: Request, status: int, error: str | None) -> JSONResponse:
    """A refused sign-in (staff or contact): why, in the caller's language."""
    return problem(
        status,
        N_("Sign-in failed"),
        gettext(error) if error else None,
        "/problems/sign-in-failed",
        instance=request.url.path,
        headers={"WWW-Authenticate": "Bearer"} if status == 401 else None,
    )
