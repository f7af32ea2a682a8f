"""Console pieces of the ticket page — standard phrases beside the reply box and the customer
context panel — and the standard phrase library pages (/phrases)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.orm import Session

from kefu.errors import Conflict, FieldError, Forbidden, Invalid
from kefu.i18n import N_
from kefu.knowledge import policy as phrase_policy
from kefu.knowledge import service as phrases
from kefu.knowledge.models import Phrase
from kefu.knowledge.schemas import PhraseCreate, PhraseUpdate
from kefu.tickets import context
from kefu.tickets.models import Ticket
from kefu.web.common import (
    CurrentMe,
    Db,
    Form,
    Me,
    PostedForm,
    all_rows,
    optional,
    parse,
    redirect,
    render,
    text,
)
from kefu.web.customers import content_label
from kefu.web.units import visible_tree

router = APIRouter()

KIND_LABELS = {
    "personal": N_("Personal"),
    "unit": N_("Unit"),
    "global": N_("Everyone"),
}
NOTICES = {
    "created": N_("Phrase saved."),
    "saved": N_("Saved."),
    "deleted": N_("Deleted."),
}


# --- the ticket page -------------------------------------------------------------------------


def reply_form(db: Session, me: Me, ticket: Ticket, request: Request) -> Form | None:
    """Without JavaScript, choosing a phrase reloads the page with the reply box filled."""
    raw = request.query_params.get("phrase", "")
    if not raw.isdigit():
        return None
    body = phrases.render_phrase(db, me.viewer, int(raw), ticket.id)
    return Form({"body": body}, key="reply")


def ticket_extras(db: Session, me: Me, ticket: Ticket) -> dict[str, Any]:
    cc = context.customer_context(db, me.viewer, ticket)
    entitlements = (
        [x for x in (content_label(i) for i in cc.level.content) if x] if cc.level else []
    )
    return {
        "phrase_options": phrases.usable(db, me.viewer),
        "cc": cc,
        "cc_entitlements": entitlements,
    }


@router.get("/tickets/{ticket_id}/phrases/{phrase_id}")
def filled_phrase(ticket_id: int, phrase_id: int, me: CurrentMe, db: Db) -> Response:
    """The phrase filled in for this ticket, as plain text for the reply box."""
    body = phrases.render_phrase(db, me.viewer, phrase_id, ticket_id)
    return PlainTextResponse(body, headers={"Cache-Control": "no-store"})


# --- the phrase library ---------------------------------------------------------------------


def _kind_options(me: Me) -> list[tuple[str, str]]:
    out = [("personal", KIND_LABELS["personal"])]
    if me.viewer.has_role(*phrases.UNIT_ROLES):
        out.append(("unit", KIND_LABELS["unit"]))
    if me.viewer.is_admin:
        out.append(("global", KIND_LABELS["global"]))
    return out


def _library(
    request: Request,
    db: Session,
    me: Me,
    *,
    form: Form | None = None,
    editing: Phrase | None = None,
    status: int = 200,
) -> Response:
    rows = all_rows(db, phrases.phrases(db, me.viewer), key=Phrase.id, cap=1000)
    rows.sort(key=lambda p: (("global", "unit", "personal").index(p.kind), p.title, p.id))
    tree = visible_tree(db, me)
    ctx = {
        "phrases": rows,
        "editable": {p.id for p in rows if phrases.may_edit(db, me.viewer, p)},
        "unit_names": {c.unit.id: c.unit.name for c in tree.choices()},
        "kind_labels": KIND_LABELS,
        "kind_options": _kind_options(me),
        "unit_choices": [
            c
            for c in tree.choices(active_only=True)
            if me.viewer.is_admin or c.unit.path.startswith(me.viewer.unit_path or "/none/")
        ],
        "placeholders": phrase_policy.PLACEHOLDERS,
        "form": form
        or Form({"kind": "personal", "title": "", "body": "", "unit_id": ""}, key="phrase"),
        "editing": editing,
        "notice": NOTICES.get(request.query_params.get("notice", "")),
    }
    return render(request, "phrases/list.html", ctx, status=status)


@router.get("/phrases")
def library(request: Request, me: CurrentMe, db: Db) -> Response:
    return _library(request, db, me)


@router.post("/phrases")
def create(request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    values = {k: text(form, k) for k in ("kind", "title", "body", "unit_id")}
    try:
        with db.begin_nested():
            data = parse(
                PhraseCreate,
                {
                    **values,
                    "kind": values["kind"] or "personal",
                    "unit_id": optional(values["unit_id"]),
                },
            )
            phrases.create_phrase(db, me.viewer, data)
    except (Invalid, Forbidden) as exc:
        db.expire_all()
        errors = exc.errors or [FieldError("kind", exc.message, exc.params)]
        return _library(request, db, me, form=Form(values, errors, key="phrase"), status=exc.status)
    return redirect(request, "/phrases", "created")


@router.get("/phrases/{phrase_id}")
def edit_page(phrase_id: int, request: Request, me: CurrentMe, db: Db) -> Response:
    phrase = phrases.get_phrase(db, me.viewer, phrase_id)
    if not phrases.may_edit(db, me.viewer, phrase):
        raise Forbidden()
    values = {"kind": phrase.kind, "title": phrase.title, "body": phrase.body, "unit_id": ""}
    return _library(request, db, me, form=Form(values, key="phrase"), editing=phrase)


@router.post("/phrases/{phrase_id}")
def update(phrase_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    phrase = phrases.get_phrase(db, me.viewer, phrase_id)
    values = {"kind": phrase.kind, "title": text(form, "title"), "body": text(form, "body")}
    raw = text(form, "version")
    try:
        with db.begin_nested():
            data = parse(
                PhraseUpdate,
                {
                    "version": int(raw) if raw.isdigit() else -1,
                    "title": values["title"],
                    "body": values["body"],
                },
            )
            phrases.update_phrase(db, me.viewer, phrase_id, data)
    except (Invalid, Conflict) as exc:
        db.expire_all()
        errors = exc.errors or [FieldError("body", exc.message, exc.params)]
        bad = Form({**values, "unit_id": ""}, errors, key="phrase")
        return _library(request, db, me, form=bad, editing=phrase, status=exc.status)
    return redirect(request, "/phrases", "saved")


@router.post("/phrases/{phrase_id}/delete")
def delete(phrase_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    phrases.delete_phrase(db, me.viewer, phrase_id)
    return redirect(request, "/phrases", "deleted")
