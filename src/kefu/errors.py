"""Typed domain errors. Services raise them; the API and the web render them once.

Messages are catalogue msgids (translated at the edge), with `params` for placeholders.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from kefu.i18n import N_


@dataclass
class FieldError:
    field: str
    message: str
    params: dict[str, Any] = dataclass_field(default_factory=dict)


class DomainError(Exception):
    status = 400
    type = "about:blank"
    title = "Bad request"

    def __init__(
        self,
        message: str | None = None,
        *,
        params: dict[str, Any] | None = None,
        errors: list[FieldError] | None = None,
    ) -> None:
        self.message = message or self.title
        self.params = params or {}
        self.errors = errors or []
        super().__init__(self.message)


class NotFound(DomainError):
    status = 404
    type = "/problems/not-found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    type = "/problems/conflict"
    title = "Conflict"


class Forbidden(DomainError):
    status = 403
    type = "/problems/forbidden"
    title = "Forbidden"


class Unauthorized(DomainError):
    status = 401
    type = "/problems/unauthorized"
    title = "Not signed in"


class Invalid(DomainError):
    """Bad input; `errors` names each field."""

    status = 422
    type = "/problems/validation"
    title = "Invalid input"

    @classmethod
    def field(cls, name: str, message: str, **params: Any) -> Invalid:
        return cls(errors=[FieldError(name, message, params)])


class TooManyRequests(DomainError):
    status = 429
    type = "/problems/rate-limited"
    title = "Too many requests"


# Titles of plain HTTP errors, shared by the API's problems and the web's error pages.
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
