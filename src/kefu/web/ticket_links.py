"""The ticket page's tags, collaborators (add, remove) and merge (a duplicate into another
ticket of the same customer, chosen among that customer's open tickets)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from kefu.errors import Conflict, FieldError, Invalid
from kefu.i18n import N_
from kefu.pagination import paginate
from kefu.tickets import collaboration, merge, queries
from kefu.tickets import service as tickets
from kefu.tickets.models import Ticket
from kefu.tickets.schemas import MergeIn, TicketUpdate
from kefu.web.common import CurrentMe, Db, Form, Me, PostedForm, parse, redirect, text

router = APIRouter()

MERGE_CHOICES = 50
NOTICES = {
    "collaborator": N_("Collaborator added; they have been told."),
    "uncollaborated": N_("Collaborator removed."),
    "merged": N_("Merged: the duplicate is closed and its messages are here."),
    "tagged": N_("Tags saved."),
}
TAG_SEPARATORS = re.compile(r"[,，、;；\n]+")


def split_tags(raw: str) -> list[str]:
    """Tags typed in one field, separated by commas (either width), 、 or semicolons."""
    return [t.strip() for t in TAG_SEPARATORS.split(raw) if t.strip()]


def panel(
    request: Request, db: Session, me: Me, ticket: Ticket, forms: dict[str, Form]
) -> dict[str, Any]:
    """What the ticket page shows of collaborators and merges."""
    others: list[Ticket] = []
    if ticket.state != "closed":
        stmt = queries.tickets(db, me.viewer, open_only=True, customer_id=ticket.customer_id)
        page = paginate(
            db,
            stmt.where(Ticket.id != ticket.id),
            key=Ticket.id,
            limit=MERGE_CHOICES,
            descending=True,
        )
        others = list(page.items)
    into = db.get(Ticket, ticket.merged_into_id) if ticket.merged_into_id else None
    key = request.query_params.get("notice", "")
    notice = {"notice": NOTICES[key]} if key in NOTICES else {}
    return {
        "tags_form": forms.get("tags_form")
        or Form({"tags": ", ".join(ticket.tags or [])}, key="tags"),
        "collaborators": collaboration.collaborators(db, me.viewer, ticket.id),
        "collab_form": forms.get("collab_form") or Form({"staff_id": ""}, key="collab"),
        "merge_form": forms.get("merge_form") or Form({"into_id": "", "reason": ""}, key="merge"),
        "merge_options": [(t.id, f"{t.number} · {t.subject}") for t in others],
        "merged_into": into,
        "merged_here": merge.merged_here(db, ticket),
    } | notice


def _page(
    request: Request, db: Session, me: Me, ticket_id: int, status: int, **forms: Form
) -> Response:
    from kefu.web.tickets import render_ticket_page

    return render_ticket_page(request, db, me, ticket_id, status=status, **forms)


@router.post("/tickets/{ticket_id}/collaborators")
def add(ticket_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    tickets.get_ticket(db, me.viewer, ticket_id)  # out of scope: 404 before anything else
    raw = text(form, "staff_id")
    try:
        if not raw.isdigit():
            raise Invalid.field("staff_id", N_("Choose a person."))
        with db.begin_nested():
            collaboration.add_collaborator(db, me.viewer, ticket_id, int(raw))
    except Invalid as exc:
        db.expire_all()
        bad = Form({"staff_id": raw}, exc.errors, key="collab")
        return _page(request, db, me, ticket_id, 422, collab_form=bad)
    return redirect(request, f"/tickets/{ticket_id}", "collaborator")


@router.post("/tickets/{ticket_id}/collaborators/{staff_id}/remove")
def remove(
    ticket_id: int, staff_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    collaboration.remove_collaborator(db, me.viewer, ticket_id, staff_id)
    return redirect(request, f"/tickets/{ticket_id}", "uncollaborated")


@router.post("/tickets/{ticket_id}/merge")
def merge_into(
    ticket_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    tickets.get_ticket(db, me.viewer, ticket_id)
    values = {"into_id": text(form, "into_id"), "reason": text(form, "reason")}
    version = text(form, "version")
    try:
        with db.begin_nested():
            data = parse(
                MergeIn,
                {
                    "into_id": values["into_id"] or None,
                    "version": int(version) if version.isdigit() else -1,
                    "reason": values["reason"],
                },
            )
            _, target = merge.merge_ticket(db, me.viewer, ticket_id, data)
            target_id = target.id
    except (Invalid, Conflict) as exc:
        db.expire_all()
        if isinstance(exc, Invalid):
            errors, code = exc.errors, 422
        else:
            errors, code = [FieldError("version", exc.message, exc.params)], 409
        bad = Form(values, errors, key="merge")
        return _page(request, db, me, ticket_id, code, merge_form=bad)
    return redirect(request, f"/tickets/{target_id}", "merged")


@router.post("/tickets/{ticket_id}/tags")
def save_tags(
    ticket_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    tickets.get_ticket(db, me.viewer, ticket_id)
    values = {"tags": text(form, "tags")}
    version = text(form, "version")
    try:
        with db.begin_nested():
            data = parse(
                TicketUpdate,
                {
                    "version": int(version) if version.isdigit() else -1,
                    "tags": split_tags(values["tags"]),
                },
            )
            tickets.update_ticket(db, me.viewer, ticket_id, data)
    except (Invalid, Conflict) as exc:
        db.expire_all()
        if isinstance(exc, Invalid):
            errors, code = exc.errors, 422
        else:
            errors, code = [FieldError("version", exc.message, exc.params)], 409
        return _page(request, db, me, ticket_id, code, tags_form=Form(values, errors, key="tags"))
    return redirect(request, f"/tickets/{ticket_id}", "tagged")
