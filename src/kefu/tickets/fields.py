"""Custom fields per category (自定义字段): admin-defined definitions, inherited by
sub-categories; values checked in one pass (every bad field named, in the caller's
language, before anything is written) and stored twice in one step — typed rows in
`ticket_field_values` for filters, and the ticket's `custom_fields` JSON for reading.

Why a values table rather than indexed JSON: the definitions change at run time (an
administrator adds a field), but an index on a JSON path is DDL per field, and SQLite has no
GIN. A row per value with a column per type is one static schema; its (field, value) B-tree
indexes serve equality and ranges — numbers as numbers, dates as dates — on both databases.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from kefu import cache
from kefu.audit.service import record
from kefu.clock import now
from kefu.errors import FieldError, Forbidden, Invalid, NotFound
from kefu.i18n import N_, Localized
from kefu.scope import Viewer
from kefu.tickets.models import Category, Ticket, TicketField, TicketFieldValue
from kefu.tickets.schemas import TicketFieldCreate, TicketFieldUpdate

TEXT_MAX = 500
CUSTOMER_CHANNELS = ("portal", "email")  # intake that asks no custom field
NUMBER_LIMIT = Decimal("1e15")
FILTER_RE = re.compile(r"^([a-z][a-z0-9_]{0,39})(>=|<=|=)(.*)$", re.S)
DEFINITION_FIELDS = (
    "category_code",
    "label_zh",
    "label_en",
    "type",
    "required",
    "choices",
    "position",
    "is_active",
)


def label(field: TicketField) -> Localized:
    return Localized(field.label_zh, field.label_en)


def choice_labels(field: TicketField) -> Localized:
    zh = "、".join(c["label_zh"] for c in field.choices)
    en = ", ".join(c["label_en"] for c in field.choices)
    return Localized(zh, en)


def choice_label(field: TicketField, value: Any) -> Localized | None:
    for c in field.choices:
        if c["value"] == value:
            return Localized(c["label_zh"], c["label_en"])
    return None


# --- definitions ------------------------------------------------------------------------------


def _ancestors(session: Session, code: str) -> list[str]:
    """The category and the ones above it (the tree is small: one query)."""
    parents = cache.configuration(
        session,
        "category_parents",
        lambda: dict(session.execute(select(Category.code, Category.parent_code)).all()),
    )
    chain: list[str] = []
    while code in parents and code not in chain:
        chain.append(code)
        code = parents[code]  # type: ignore[assignment]
    return chain


def fields_for(session: Session, category_code: str, active_only: bool = True) -> list[TicketField]:
    """The fields of a category: its own, its ancestors' and those of every category, in the
    admin's order. One query when no field is defined (the usual intake); a batch of
    intakes reads the definitions once for all its categories."""
    stmt = select(TicketField)
    if active_only:
        stmt = stmt.where(TicketField.is_active.is_(True))
    rows: list[TicketField] = cache.configuration(
        session,
        ("ticket_fields", active_only),
        lambda: list(session.scalars(stmt.order_by(TicketField.position, TicketField.id))),
    )
    if not rows or all(f.category_code is None for f in rows):
        return rows
    chain = set(_ancestors(session, category_code))
    return [f for f in rows if f.category_code is None or f.category_code in chain]


def list_definitions(
    session: Session, category_code: str | None = None, include_inactive: bool = True
) -> list[TicketField]:
    stmt = select(TicketField).order_by(TicketField.position, TicketField.id)
    if category_code is not None:
        stmt = stmt.where(TicketField.category_code == category_code)
    if not include_inactive:
        stmt = stmt.where(TicketField.is_active.is_(True))
    return list(session.scalars(stmt))


def get_definition(session: Session, field_id: int, for_update: bool = False) -> TicketField:
    stmt = select(TicketField).where(TicketField.id == field_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.scalars(stmt).first()
    if row is None:
        raise NotFound(params={"id": field_id})
    return row


def _admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise Forbidden(N_("Only administrators may define ticket fields."))


def _check_category(session: Session, code: str | None) -> None:
    if code is not None and session.get(Category, code) is None:
        raise Invalid.field("category_code", N_("Unknown category."))


def create_definition(session: Session, viewer: Viewer, data: TicketFieldCreate) -> TicketField:
    _admin(viewer)
    _check_category(session, data.category_code)
    if session.scalar(select(TicketField.id).where(TicketField.key == data.key)) is not None:
        raise Invalid.field("key", N_("A field with this key exists already."))
    at = now()
    row = TicketField(
        **data.model_dump(mode="json"),
        created_at=at,
        updated_at=at,
    )
    session.add(row)
    session.flush()
    record(
        session,
        viewer,
        "ticket_field.create",
        "ticket_field",
        row.id,
        {f: {"before": None, "after": getattr(row, f)} for f in ("key", *DEFINITION_FIELDS)},
    )
    return row


def update_definition(
    session: Session, viewer: Viewer, field_id: int, data: TicketFieldUpdate
) -> TicketField:
    _admin(viewer)
    row = get_definition(session, field_id, for_update=True)
    changes = data.model_dump(exclude_unset=True, mode="json")
    if "category_code" in changes:
        _check_category(session, changes["category_code"])
    new_type = changes.get("type", row.type)
    new_choices = changes.get("choices", row.choices)
    if new_type != row.type and session.scalar(
        select(TicketFieldValue.ticket_id).where(TicketFieldValue.field_id == row.id).limit(1)
    ):
        raise Invalid.field(
            "type", N_("Tickets hold values of this field: its type can no longer change.")
        )
    if new_type == "choice" and not new_choices:
        raise Invalid.field("choices", N_("A choice field needs at least one choice."))
    if new_type != "choice" and new_choices:
        raise Invalid.field("choices", N_("Only a choice field has choices."))
    before = {f: getattr(row, f) for f in DEFINITION_FIELDS}
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_at = now()
    after = {f: getattr(row, f) for f in DEFINITION_FIELDS}
    diff = {f: {"before": before[f], "after": after[f]} for f in after if before[f] != after[f]}
    if diff:
        record(session, viewer, "ticket_field.update", "ticket_field", row.id, diff)
    session.flush()
    return row


# --- values -----------------------------------------------------------------------------------


@dataclass
class Cleaned:
    """Checked values by key (None clears one), ready for write_values()."""

    values: dict[str, Any]
    defs: dict[str, TicketField]


def _error(field_key: str, msgid: str, **params: Any) -> FieldError:
    return FieldError(f"custom_fields.{field_key}", msgid, params)


def _number(raw: Any) -> Decimal | None:
    if isinstance(raw, bool):
        return None
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        return None
    if not value.is_finite() or abs(value) >= NUMBER_LIMIT:
        return None
    if value != value.quantize(Decimal("0.0001")):
        return None
    return value


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def clean_one(field: TicketField, raw: Any) -> tuple[Any, FieldError | None]:
    """One value as stored in the JSON copy (text, number, ISO date, choice value), or the
    error naming the field by its label. Empty means "no value" (None)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if field.required:
            return None, _error(field.key, N_("{field} is required."), field=label(field))
        return None, None
    if field.type == "text":
        if isinstance(raw, bool | dict | list):
            return None, _error(field.key, N_("{field} must be text."), field=label(field))
        text = str(raw).strip()
        if len(text) > TEXT_MAX:
            return None, _error(
                field.key, N_("{field}: at most {n} characters."), field=label(field), n=TEXT_MAX
            )
        if re.search(r"<\s*[A-Za-z!/?]", text) or any(ord(c) < 32 and c != "\t" for c in text):
            return None, _error(
                field.key, N_("{field}: plain text only, without markup."), field=label(field)
            )
        return text, None
    if field.type == "number":
        number = _number(raw)
        if number is None:
            return None, _error(
                field.key,
                N_("{field} must be a number (at most 4 decimal places)."),
                field=label(field),
            )
        return _json_number(number), None
    if field.type == "date":
        try:
            day = date.fromisoformat(str(raw).strip())
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(raw).strip()):
                raise ValueError
        except ValueError:
            return None, _error(
                field.key, N_("{field} must be a date (YYYY-MM-DD)."), field=label(field)
            )
        return day.isoformat(), None
    value = str(raw).strip()
    if choice_label(field, value) is None:
        return None, _error(
            field.key,
            N_("{field} must be one of: {choices}."),
            field=label(field),
            choices=choice_labels(field),
        )
    return value, None


def clean(
    session: Session,
    category_code: str,
    raw: dict[str, Any],
    *,
    current: dict[str, Any] | None = None,
    require: bool = True,
) -> Cleaned:
    """Check `raw` against the category's fields. At intake (`current` None) every required
    field must be given (unless `require` is off: a customer's channel); on an edit only the
    fields sent are checked, and a value the ticket
    already holds passes unchanged (a choice retired since, say). Every bad field is named,
    then nothing is written."""
    defs = {f.key: f for f in fields_for(session, category_code)}
    errors: list[FieldError] = []
    values: dict[str, Any] = {}
    for key in raw:
        if key not in defs:
            errors.append(_error(key, N_("This category has no field “{key}”."), key=key))
    for key, field in defs.items():
        if current is not None and key not in raw:
            continue
        given = raw.get(key)
        if current is not None and given is not None and given == current.get(key):
            values[key] = given
            continue
        if not require and key not in raw:
            continue
        value, error = clean_one(field, given)
        if error is not None:
            errors.append(error)
        elif current is None and value is None:
            continue
        else:
            values[key] = value
    if errors:
        raise Invalid(errors=errors)
    return Cleaned(values, defs)


def write_values(session: Session, ticket: Ticket, cleaned: Cleaned) -> dict[str, Any]:
    """Store the checked values: typed rows and the JSON copy, together. Returns the
    changes {key: {"before", "after"}}."""
    current = dict(ticket.custom_fields or {})
    changes: dict[str, Any] = {}
    for key, value in cleaned.values.items():
        if current.get(key) == value:
            continue
        field = cleaned.defs[key]
        changes[key] = {"before": current.get(key), "after": value}
        session.execute(
            delete(TicketFieldValue).where(
                TicketFieldValue.ticket_id == ticket.id, TicketFieldValue.field_id == field.id
            )
        )
        if value is None:
            current.pop(key, None)
            continue
        current[key] = value
        session.add(TicketFieldValue(**_typed(ticket.id, field, value)))
    if changes:
        ticket.custom_fields = current  # a new object, so the JSON column is written
    return changes


def new_value_rows(ticket_id: int, cleaned: Cleaned) -> list[dict[str, Any]]:
    """The typed rows of a ticket inserted just now, whose `custom_fields` JSON copy went in
    with its row: {column: value} for the intake to write with its batch."""
    return [
        _typed(ticket_id, cleaned.defs[key], value)
        for key, value in cleaned.values.items()
        if value is not None
    ]


def _typed(ticket_id: int, field: TicketField, value: Any) -> dict[str, Any]:
    """A field value's row: the value in the column of its type (all three named, so that
    rows of every type take one statement)."""
    row: dict[str, Any] = {
        "ticket_id": ticket_id,
        "field_id": field.id,
        "value_text": None,
        "value_number": None,
        "value_date": None,
    }
    if field.type == "number":
        row["value_number"] = Decimal(str(value))
    elif field.type == "date":
        row["value_date"] = date.fromisoformat(value)
    else:
        row["value_text"] = value
    return row


# --- filters ----------------------------------------------------------------------------------


@dataclass
class FilterPart:
    """A custom field filter, checked: the field, the operator and the value as stored in
    the JSON copy (text, number, ISO date, choice value)."""

    field: TicketField
    op: str
    value: Any

    @property
    def expression(self) -> str:
        return f"{self.field.key}{self.op}{self.value}"


def parse_filter(session: Session, expression: str) -> FilterPart:
    """`key=value`, `key>=value` or `key<=value`, checked against the field's type (every
    error names `field`)."""
    found = FILTER_RE.match(expression.strip())
    if not found:
        raise Invalid.field(
            "field", N_("Write a field filter as key=value, key>=value or key<=value.")
        )
    key, op, raw = found.groups()
    field = session.scalars(select(TicketField).where(TicketField.key == key)).first()
    if field is None:
        raise Invalid.field("field", N_("No ticket field has the key “{key}”."), key=key)
    probe = TicketField(
        key=field.key,
        label_zh=field.label_zh,
        label_en=field.label_en,
        type=field.type,
        required=True,
        choices=field.choices,
    )
    value, error = clean_one(probe, raw)
    if error is not None:
        raise Invalid(errors=[FieldError("field", error.message, error.params)])
    if field.type not in ("number", "date") and op != "=":
        raise Invalid.field("field", N_("Only numbers and dates compare with >= and <=."))
    return FilterPart(field, op, value)


def filter_fields(session: Session, category_codes: Iterable[str] = ()) -> list[TicketField]:
    """The fields a ticket list may be filtered on: those of the chosen categories (their
    own, inherited and global ones), or every active field when no category is chosen."""
    codes = list(category_codes)
    if not codes:
        return list_definitions(session, include_inactive=False)
    found: dict[int, TicketField] = {}
    for code in codes:
        for f in fields_for(session, code):
            found.setdefault(f.id, f)
    return sorted(found.values(), key=lambda f: (f.position, f.id))


def filter_condition(session: Session, expression: str) -> ColumnElement[bool]:
    """`key=value`, `key>=value` or `key<=value` on a custom field, as a condition on
    tickets (through the typed, indexed values)."""
    part = parse_filter(session, expression)
    field, op, value = part.field, part.op, part.value
    column: Any
    if field.type == "number":
        column, value = TicketFieldValue.value_number, Decimal(str(value))
    elif field.type == "date":
        column, value = TicketFieldValue.value_date, date.fromisoformat(value)
    else:
        column = TicketFieldValue.value_text
    test = column == value if op == "=" else column >= value if op == ">=" else column <= value
    matching = select(TicketFieldValue.ticket_id).where(TicketFieldValue.field_id == field.id, test)
    return Ticket.id.in_(matching)
