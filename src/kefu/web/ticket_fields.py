"""Custom ticket fields on the web: the administrators' definition pages, the fields panel of
the ticket page (shown and edited with the ticket's version), and the fields of the chosen
category on the agent intake form (an HTMX fragment when the category changes).

Inputs are named `cf__<key>`; the service names errors `custom_fields.<key>`, mapped back
here so each message stands beside its input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from kefu.errors import Conflict, FieldError, Invalid
from kefu.i18n import N_, get_locale
from kefu.tickets import fields, queries
from kefu.tickets import service as tickets
from kefu.tickets.models import Ticket, TicketField
from kefu.tickets.schemas import TicketFieldCreate, TicketFieldUpdate, TicketUpdate
from kefu.web.common import (
    CurrentMe,
    Db,
    Form,
    PostedForm,
    parse,
    redirect,
    render,
    require_role,
    text,
    tr,
)

router = APIRouter()

PREFIX = "cf__"
TYPE_LABELS = {
    "text": N_("Text"),
    "number": N_("Number"),
    "date": N_("Date"),
    "choice": N_("Choice"),
}
CHOICES_HINT = N_("One choice a line: value | 中文 | English (the value: letters, digits, _ . -).")
BAD_CHOICE_LINE = N_("Line {n}: write value | 中文 | English.")
NOTICES = {"created": N_("Field created."), "saved": N_("Saved.")}


def input_name(key: str) -> str:
    return PREFIX + key


def web_errors(errors: list[FieldError]) -> list[FieldError]:
    """`custom_fields.<key>` → `cf__<key>`, the input's name."""
    out = []
    for e in errors:
        if e.field.startswith("custom_fields."):
            e = FieldError(input_name(e.field.split(".", 1)[1]), e.message, e.params)
        out.append(e)
    return out


def posted_values(form: FormData) -> dict[str, str]:
    """The custom field inputs of a posted form, by field key."""
    return {
        name[len(PREFIX) :]: value.strip()
        for name, value in form.multi_items()
        if name.startswith(PREFIX) and isinstance(value, str)
    }


def label_of(field: TicketField) -> str:
    return field.label_en if get_locale() == "en" else field.label_zh


@dataclass
class FieldView:
    """One field as a form shows it."""

    field: TicketField
    name: str  # the input's name
    label: str
    options: list[tuple[str, str]]  # choice fields: (value, label)

    @property
    def type(self) -> str:
        return self.field.type


def views(defs: list[TicketField], current: dict[str, Any] | None = None) -> list[FieldView]:
    en = get_locale() == "en"
    out = []
    for f in defs:
        options = [(c["value"], c["label_en"] if en else c["label_zh"]) for c in f.choices]
        held = (current or {}).get(f.key)
        if f.type == "choice" and held is not None and held not in {v for v, _ in options}:
            options.append((str(held), tr(N_("{value} (retired)"), value=held)))
        out.append(FieldView(f, input_name(f.key), label_of(f), options))
    return out


def shown_value(field: TicketField, value: Any) -> str:
    """A stored value as read on the page (a choice by its label)."""
    if value is None:
        return ""
    if field.type == "choice":
        found = fields.choice_label(field, value)
        return str(found) if found is not None else str(value)
    return str(value)


# --- the ticket page's panel ------------------------------------------------------------------


def panel(db: Session, ticket: Ticket, form: Form | None = None) -> dict[str, Any]:
    """What the ticket page needs for its custom fields panel."""
    defs = fields.fields_for(db, ticket.category_code)
    current = ticket.custom_fields or {}
    known = {f.key for f in defs}
    every = fields.list_definitions(db)
    # Values of fields no longer asked for (deactivated, or of the category before): shown.
    others = [
        (label_of(f), shown_value(f, current.get(f.key)))
        for f in every
        if f.key in current and f.key not in known
    ]
    values = {input_name(f.key): "" if current.get(f.key) is None else current[f.key] for f in defs}
    return {
        "cf_views": views(defs, current),
        "cf_shown": [
            (v.label, shown_value(v.field, current.get(v.field.key))) for v in views(defs)
        ],
        "cf_others": others,
        "cf_labels": {f.key: label_of(f) for f in every},  # for the timeline
        "cf_form": form or Form(values, key="cf"),
    }


@router.post("/tickets/{ticket_id}/fields")
def save_fields(
    ticket_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    from kefu.web.tickets import render_ticket_page

    tickets.get_ticket(db, me.viewer, ticket_id)  # out of scope: 404 before anything else
    raw = posted_values(form)
    version = text(form, "version")
    try:
        with db.begin_nested():
            data = parse(
                TicketUpdate,
                {"version": int(version) if version.isdigit() else -1, "custom_fields": raw},
            )
            tickets.update_ticket(db, me.viewer, ticket_id, data)
    except (Invalid, Conflict) as exc:
        db.expire_all()
        if isinstance(exc, Invalid):
            errors, code = web_errors(exc.errors), 422
        else:
            errors, code = [FieldError("version", exc.message, exc.params)], 409
        bad = Form({input_name(k): v for k, v in raw.items()}, errors, key="cf")
        return render_ticket_page(request, db, me, ticket_id, status=code, cf_form=bad)
    return redirect(request, f"/tickets/{ticket_id}", "saved")


# --- agent intake: the fields of the chosen category --------------------------------------------


def intake_fields(db: Session, category_code: str, form: Form) -> dict[str, Any]:
    defs = fields.fields_for(db, category_code) if category_code else []
    return {"cf_views": views(defs), "cf_form": form}


@router.get("/tickets/new/fields")
def intake_fragment(request: Request, me: CurrentMe, db: Db) -> Response:
    code = (request.query_params.get("category_code") or "")[:40]
    ctx = intake_fields(db, code, Form({}, key="new"))
    return render(request, "tickets/new_fields.html", ctx, fragment="intake_fields")


# --- administrators: the definitions ----------------------------------------------------------


def _choices_text(choices: list[dict[str, str]]) -> str:
    return "\n".join(f"{c['value']} | {c['label_zh']} | {c['label_en']}" for c in choices)


def _parse_choices(raw: str) -> list[dict[str, str]]:
    out = []
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not all(parts):
            raise Invalid.field("choices", BAD_CHOICE_LINE, n=n)
        out.append({"value": parts[0], "label_zh": parts[1], "label_en": parts[2]})
    return out


def _category_options(db: Session) -> list[tuple[str, str]]:
    zh = get_locale() == "zh_CN"
    return [(c.code, c.name_zh if zh else c.name_en) for c in queries.categories(db)]


def _blank_form() -> Form:
    return Form(
        {
            "key": "",
            "category_code": "",
            "label_zh": "",
            "label_en": "",
            "type": "text",
            "required": "",
            "choices": "",
            "position": "0",
            "is_active": "1",
        },
        key="fd",
    )


def _form_of(f: TicketField) -> Form:
    return Form(
        {
            "key": f.key,
            "category_code": f.category_code or "",
            "label_zh": f.label_zh,
            "label_en": f.label_en,
            "type": f.type,
            "required": "1" if f.required else "",
            "choices": _choices_text(f.choices),
            "position": str(f.position),
            "is_active": "1" if f.is_active else "",
        },
        key="fd",
    )


def _posted(form: FormData) -> dict[str, str]:
    names = ("key", "category_code", "label_zh", "label_en", "type", "choices", "position")
    values = {name: text(form, name) for name in names}
    values["required"] = "1" if text(form, "required") == "1" else ""
    values["is_active"] = "1" if text(form, "is_active") == "1" else ""
    return values


def _data(values: dict[str, str]) -> dict[str, Any]:
    position = values["position"].strip() or "0"
    return {
        "category_code": values["category_code"] or None,
        "label_zh": values["label_zh"],
        "label_en": values["label_en"],
        "type": values["type"],
        "required": values["required"] == "1",
        "choices": _parse_choices(values["choices"]),
        "position": int(position) if position.isdigit() else position,
        "is_active": values["is_active"] == "1",
    }


def _list_page(request: Request, db: Session, form: Form, status: int = 200) -> Response:
    options = _category_options(db)
    names = dict(options)
    ctx = {
        "defs": fields.list_definitions(db),
        "field": None,
        "category_names": names,
        "form": form,
        "category_options": options,
        "type_options": list(TYPE_LABELS.items()),
        "type_labels": TYPE_LABELS,
        "label_of": label_of,
        "choices_hint": CHOICES_HINT,
        "notice": NOTICES.get(request.query_params.get("notice", "")),
    }
    return render(request, "ticket_fields/list.html", ctx, status=status)


@router.get("/ticket-fields")
def list_page(request: Request, me: CurrentMe, db: Db) -> Response:
    require_role(me, "admin")
    return _list_page(request, db, _blank_form())


@router.post("/ticket-fields")
def create(request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    require_role(me, "admin")
    values = _posted(form)
    try:
        with db.begin_nested():
            data = parse(TicketFieldCreate, {"key": values["key"], **_data(values)})
            fields.create_definition(db, me.viewer, data)
    except Invalid as exc:
        db.expire_all()
        return _list_page(request, db, Form(values, exc.errors, key="fd"), status=422)
    return redirect(request, "/ticket-fields", "created")


def _edit_page(
    request: Request, db: Session, row: TicketField, form: Form, status: int = 200
) -> Response:
    ctx = {
        "field": row,
        "form": form,
        "label": label_of(row),
        "category_options": _category_options(db),
        "type_options": list(TYPE_LABELS.items()),
        "choices_hint": CHOICES_HINT,
    }
    return render(request, "ticket_fields/edit.html", ctx, status=status)


@router.get("/ticket-fields/{field_id}")
def edit_page(field_id: int, request: Request, me: CurrentMe, db: Db) -> Response:
    require_role(me, "admin")
    row = fields.get_definition(db, field_id)
    return _edit_page(request, db, row, _form_of(row))


@router.post("/ticket-fields/{field_id}")
def update(field_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    require_role(me, "admin")
    row = fields.get_definition(db, field_id)
    values = {**_posted(form), "key": row.key}
    try:
        with db.begin_nested():
            data = parse(TicketFieldUpdate, _data(values))
            fields.update_definition(db, me.viewer, field_id, data)
    except Invalid as exc:
        db.expire_all()
        row = fields.get_definition(db, field_id)
        return _edit_page(request, db, row, Form(values, exc.errors, key="fd"), status=422)
    return redirect(request, "/ticket-fields", "saved")
