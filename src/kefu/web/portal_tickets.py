"""The customer portal's ticket pages: the contact's requests, a new request, one request's
public timeline with reply, confirm and reopen, and downloads of shared files."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from kefu.errors import Invalid
from kefu.i18n import N_, get_locale
from kefu.pagination import paginate
from kefu.portal import tickets as portal
from kefu.portal.schemas import PortalReply, PortalTicketIn
from kefu.tickets import attachments
from kefu.tickets import queries as ticket_queries
from kefu.tickets.models import Category, Ticket
from kefu.web import ticket_fields
from kefu.web.common import Db, Form, parse, redirect, text, url_with
from kefu.web.portal import Contactee, ContactForm, CurrentContact, page

router = APIRouter()

PAGE_SIZE = 20
MAX_FILES = 5
STATES = portal.STATES  # the customer's words for the states
FILTER_LABELS = {
    "open": N_("Open"),
    "resolved": N_("To confirm"),
    "closed": N_("Closed"),
    "all": N_("All"),
}


def category_options(db: Session) -> list[tuple[str, str]]:
    zh = get_locale() == "zh_CN"
    return [(c.code, c.name_zh if zh else c.name_en) for c in ticket_queries.categories(db)]


def category_name(db: Session, code: str) -> str:
    row = db.get(Category, code)
    if row is None:
        return code
    return row.name_zh if get_locale() == "zh_CN" else row.name_en


def uploads(form: FormData) -> list[tuple[str, bytes]]:
    """The files chosen (empty file inputs are skipped); each read to one byte past the
    limit, so an oversized one costs no more memory and is refused by the checks."""
    out = []
    for value in form.getlist("files"):
        if isinstance(value, UploadFile) and value.filename:
            out.append((value.filename, value.file.read(attachments.max_bytes() + 1)))
    if len(out) > MAX_FILES:
        raise Invalid.field("files", N_("At most {n} files at a time."), n=MAX_FILES)
    return out


LABELS = {"STATES": STATES}


@router.get("/portal")
def home(request: Request, who: CurrentContact, db: Db) -> Response:
    show = request.query_params.get("show", "open")
    show = show if show in portal.FILTERS else "open"
    cursor = request.query_params.get("cursor") or None
    stmt = portal.requests(db, who.viewer, show)
    found = paginate(db, stmt, key=Ticket.id, limit=PAGE_SIZE, cursor=cursor, descending=True)
    customers = {c.id: c for c in portal.customers_for(db, who.viewer)}
    ctx = {
        "tickets": found.items,
        "show": show,
        "filters": FILTER_LABELS,
        "customers": customers,
        "category_name": lambda code: category_name(db, code),
        "next_url": url_with(request, cursor=found.next_cursor) if found.next_cursor else None,
        "first_url": url_with(request, cursor=None) if cursor else None,
        **LABELS,
    }
    return page(request, "portal/home.html", ctx)


def _new_page(
    request: Request, db: Session, who: Contactee, form: Form, status: int = 200
) -> Response:
    customers = portal.customers_for(db, who.viewer)
    ctx = {
        "form": form,
        "category_options": category_options(db),
        "customer_options": [(c.id, c.name) for c in customers] if len(customers) > 1 else [],
        "max_mb": attachments.max_bytes() // (1024 * 1024),
        "max_files": MAX_FILES,
        **_fields_ctx(db, who, str(form["category_code"])),
    }
    return page(request, "portal/new.html", ctx, status=status)


def _fields_ctx(db: Session, who: Contactee, category_code: str) -> dict[str, Any]:
    """The chosen category's custom fields, as the form shows them (never required here)."""
    return {"cf_views": ticket_fields.views(portal.request_fields(db, who.viewer, category_code))}


FORM_FIELDS = ("customer_id", "category_code", "subject", "description")


@router.get("/portal/tickets/new")
def new_request(request: Request, who: CurrentContact, db: Db) -> Response:
    # Without JavaScript, "Show the questions" sends the form here by GET: keep what was typed.
    p = request.query_params
    values: dict[str, Any] = {name: (p.get(name) or "")[:20_000] for name in FORM_FIELDS}
    values["customer_id"] = values["customer_id"] or who.viewer.customer_id
    return _new_page(request, db, who, Form(values, key="new"))


@router.get("/portal/tickets/new/fields")
def new_request_fields(request: Request, who: CurrentContact, db: Db) -> Response:
    """The fields of the chosen category: the form's fragment when the category changes."""
    code = (request.query_params.get("category_code") or "")[:40]
    ctx = {"form": Form({}, key="new"), **_fields_ctx(db, who, code)}
    return page(request, "portal/new_fields.html", ctx, fragment="request_fields")


@router.post("/portal/tickets/new")
def submit(request: Request, who: CurrentContact, db: Db, form: ContactForm) -> Response:
    values = {name: text(form, name) for name in FORM_FIELDS}
    # Only the inputs of the chosen category count (the page may still show another's
    # when the category changed without JavaScript).
    asked = {f.key for f in portal.request_fields(db, who.viewer, values["category_code"])}
    custom = {k: v for k, v in ticket_fields.posted_values(form).items() if k in asked}
    try:
        with db.begin_nested():
            raw = values["customer_id"]
            data = parse(
                PortalTicketIn,
                {
                    **values,
                    "customer_id": int(raw) if raw.isdigit() else None,
                    "custom_fields": custom,
                },
            )
            ticket = portal.submit(db, who.viewer, data, uploads(form))
    except Invalid as exc:
        db.expire_all()
        shown = {**values, **{ticket_fields.input_name(k): v for k, v in custom.items()}}
        bad = Form(shown, ticket_fields.web_errors(exc.errors), key="new")
        return _new_page(request, db, who, bad, status=422)
    return redirect(request, f"/portal/tickets/{ticket.id}", "created")


def _ticket_page(
    request: Request,
    db: Session,
    who: Contactee,
    ticket_id: int,
    *,
    status: int = 200,
    **forms: Form,
) -> Response:
    ticket = portal.get_request(db, who.viewer, ticket_id)  # another customer's: 404
    ctx: dict[str, Any] = {
        "ticket": ticket,
        "entries": portal.timeline(db, who.viewer, ticket),
        "category": category_name(db, ticket.category_code),
        "customer": next(
            (c for c in portal.customers_for(db, who.viewer) if c.id == ticket.customer_id), None
        ),
        "may_reopen": portal.may_reopen(ticket),
        "reply_form": forms.get("reply_form") or Form({"body": ""}, key="reply"),
        "reopen_form": forms.get("reopen_form") or Form({"body": ""}, key="reopen"),
        "state_form": forms.get("state_form") or Form({}, key="state"),
        "max_mb": attachments.max_bytes() // (1024 * 1024),
        **LABELS,
    }
    return page(request, "portal/ticket.html", ctx, status=status)


@router.get("/portal/tickets/{ticket_id}")
def ticket_page(ticket_id: int, request: Request, who: CurrentContact, db: Db) -> Response:
    return _ticket_page(request, db, who, ticket_id)


@router.post("/portal/tickets/{ticket_id}/reply")
def reply(
    ticket_id: int, request: Request, who: CurrentContact, db: Db, form: ContactForm
) -> Response:
    portal.get_request(db, who.viewer, ticket_id)  # out of scope: 404 before anything else
    values = {"body": text(form, "body")}
    try:
        with db.begin_nested():
            portal.reply(db, who.viewer, ticket_id, parse(PortalReply, values), uploads(form))
    except Invalid as exc:
        db.expire_all()
        bad = Form(values, exc.errors, key="reply")
        return _ticket_page(request, db, who, ticket_id, status=422, reply_form=bad)
    return redirect(request, f"/portal/tickets/{ticket_id}", "replied")


@router.post("/portal/tickets/{ticket_id}/confirm")
def confirm(
    ticket_id: int, request: Request, who: CurrentContact, db: Db, form: ContactForm
) -> Response:
    portal.get_request(db, who.viewer, ticket_id)
    try:
        with db.begin_nested():
            portal.confirm(db, who.viewer, ticket_id)
    except Invalid as exc:
        db.expire_all()
        bad = Form({}, exc.errors, key="state")
        return _ticket_page(request, db, who, ticket_id, status=422, state_form=bad)
    return redirect(request, f"/portal/tickets/{ticket_id}", "confirmed")


@router.post("/portal/tickets/{ticket_id}/reopen")
def reopen(
    ticket_id: int, request: Request, who: CurrentContact, db: Db, form: ContactForm
) -> Response:
    portal.get_request(db, who.viewer, ticket_id)
    values = {"body": text(form, "body")}
    try:
        with db.begin_nested():
            portal.reopen(db, who.viewer, ticket_id, parse(PortalReply, values))
    except Invalid as exc:
        db.expire_all()
        bad = Form(values, exc.errors, key="reopen")
        return _ticket_page(request, db, who, ticket_id, status=422, reopen_form=bad)
    return redirect(request, f"/portal/tickets/{ticket_id}", "reopened")


@router.get("/portal/tickets/{ticket_id}/files/{attachment_id}")
def download(ticket_id: int, attachment_id: int, who: CurrentContact, db: Db) -> FileResponse:
    row, path = portal.open_file(db, who.viewer, ticket_id, attachment_id)
    return FileResponse(
        path,
        media_type=row.content_type,
        filename=row.filename,
        headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"},
    )
