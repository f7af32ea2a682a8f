"""RFC 9457 problem documents, in the caller's language, naming each bad field."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kefu.errors import DomainError, FieldError
from kefu.i18n import DEFAULT_LOCALE, N_, gettext, set_locale
from kefu.validation import KefuValueError

MEDIA_TYPE = "application/problem+json"

# Pydantic error types → catalogue messages (placeholders from the error's ctx).
PYDANTIC_MESSAGES = {
    "missing": N_("This field is required."),
    "extra_forbidden": N_("Unknown field."),
    "string_too_short": N_("Must not be empty."),
    "string_too_long": N_("At most {max_length} characters."),
    "string_type": N_("Must be text."),
    "string_unicode": N_("Must be valid UTF-8 text."),
    "int_type": N_("Must be a whole number."),
    "int_parsing": N_("Must be a whole number."),
    "int_from_float": N_("Must be a whole number."),
    "bool_type": N_("Must be true or false."),
    "bool_parsing": N_("Must be true or false."),
    "list_type": N_("Must be a list."),
    "too_short": N_("Give at least {min_length}."),
    "too_long": N_("Give at most {max_length}."),
    "greater_than_equal": N_("Must be at least {ge}."),
    "less_than_equal": N_("Must be at most {le}."),
    "literal_error": N_("Must be one of: {expected}."),
    "enum": N_("Must be one of: {expected}."),
    "json_invalid": N_("The body is not valid JSON."),
    "model_attributes_type": N_("Must be a JSON object."),
    "dict_type": N_("Must be a JSON object."),
    "datetime_parsing": N_("Must be a date and time (ISO 8601)."),
    "datetime_type": N_("Must be a date and time (ISO 8601)."),
    "decimal_parsing": N_("Must be a number."),
    "float_parsing": N_("Must be a number."),
}
FALLBACK = N_("Invalid value.")


def field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or "body"


def pydantic_errors(errors: Any) -> list[FieldError]:
    out: list[FieldError] = []
    for err in errors:
        ctx = dict(err.get("ctx") or {})
        original = ctx.get("error")
        if isinstance(original, KefuValueError):
            name = field_name(err["loc"])
            if original.field:
                name = original.field if name == "body" else f"{name}.{original.field}"
            out.append(FieldError(name, original.msgid, dict(original.params)))
            continue
        msgid = PYDANTIC_MESSAGES.get(err["type"], FALLBACK)
        params = {k: v for k, v in ctx.items() if isinstance(v, str | int | float)}
        out.append(FieldError(field_name(err["loc"]), msgid, params))
    return out


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


HTTP_TITLES = {
    400: N_("Bad request"),
    401: N_("Not signed in"),
    403: N_("Forbidden"),
    404: N_("Not found"),
    405: N_("Method not allowed"),
    409: N_("Conflict"),
    413: N_("Request too large"),
    415: N_("Unsupported media type"),
    429: N_("Too many requests"),
    500: N_("Internal error"),
}


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
