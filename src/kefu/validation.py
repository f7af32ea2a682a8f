"""Field types shared by the schemas of every domain (Pydantic), with their limits."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from kefu.errors import FieldError
from kefu.i18n import N_


class Input(BaseModel):
    """Base of every input schema: unknown fields are refused, strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class KefuValueError(ValueError):
    """A validation failure carrying a catalogue msgid (translated at the edge)."""

    def __init__(self, msgid: str, *, field: str | None = None, **params: object) -> None:
        self.msgid = msgid
        self.field = field  # for a model-wide check: the field the message is about
        self.params = params
        super().__init__(msgid)


def _no_control_chars(value: str) -> str:
    if any(ord(c) < 32 and c not in "\t" for c in value):
        raise KefuValueError(N_("Control characters are not allowed."))
    return value


Name = Annotated[
    str, StringConstraints(min_length=1, max_length=100), AfterValidator(_no_control_chars)
]

REGION_RE = re.compile(r"^\d{6}(\d{3}(\d{3})?)?$")


def _region(value: str) -> str:
    if not REGION_RE.match(value):
        raise KefuValueError(N_("An administrative division code has 6, 9 or 12 digits."))
    return value


RegionCode = Annotated[str, StringConstraints(min_length=1, max_length=12), AfterValidator(_region)]


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise KefuValueError(N_("Unknown time zone.")) from exc
    if value not in available_timezones() and value != "UTC":
        raise KefuValueError(N_("Unknown time zone."))
    return value


TimeZone = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_timezone)]

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


def _username(value: str) -> str:
    value = value.lower()
    if not USERNAME_RE.match(value):
        raise KefuValueError(
            N_("2–64 characters: lowercase letters, digits, dot, dash or underscore.")
        )
    return value


Username = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_username)]

PHONE_RE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8}(-\d{1,6})?|\+?[\d\- ]{6,20})$")


def _phone(value: str) -> str:
    if not PHONE_RE.match(value):
        raise KefuValueError(N_("Not a valid phone number."))
    return value


Phone = Annotated[str, StringConstraints(min_length=1, max_length=32), AfterValidator(_phone)]

EMAIL_RE = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")


def _email(value: str) -> str:
    if not EMAIL_RE.match(value):
        raise KefuValueError(N_("Not a valid e-mail address."))
    return value


Email = Annotated[str, StringConstraints(min_length=3, max_length=254), AfterValidator(_email)]


def _password(value: str) -> str:
    if len(value) < 8:
        raise KefuValueError(
            N_(
                "At least {n} characters.",
            ),
            n=8,
        )
    return value


Password = Annotated[str, StringConstraints(max_length=200), AfterValidator(_password)]


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
    "decimal_type": N_("Must be a number."),
    "decimal_max_places": N_("At most {decimal_places} decimal places."),
    "decimal_max_digits": N_("The number is too large."),
    "decimal_whole_digits": N_("The number is too large."),
    "date_parsing": N_("Must be a date (YYYY-MM-DD)."),
    "date_from_datetime_parsing": N_("Must be a date (YYYY-MM-DD)."),
    "date_from_datetime_inexact": N_("Must be a date (YYYY-MM-DD)."),
    "date_type": N_("Must be a date (YYYY-MM-DD)."),
    "float_parsing": N_("Must be a number."),
}
FALLBACK = N_("Invalid value.")


def field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or "body"


def pydantic_errors(errors: Any) -> list[FieldError]:
    """Pydantic's errors as FieldErrors with catalogue msgids (API and web alike)."""
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
        params = {
            k: str(v) if isinstance(v, Decimal) else v
            for k, v in ctx.items()
            if isinstance(v, str | int | float | Decimal)
        }
        out.append(FieldError(field_name(err["loc"]), msgid, params))
    return out
