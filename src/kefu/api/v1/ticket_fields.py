"""Custom ticket fields: the definitions (administrators write them, everyone reads them)
and the fields a category's tickets carry, inherited from the categories above it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from kefu.api.v1.common import created
from kefu.api.v1.deps import CurrentViewer, Db
from kefu.errors import NotFound
from kefu.tickets import fields
from kefu.tickets.models import Category, TicketField
from kefu.tickets.schemas import ChoiceOut, TicketFieldCreate, TicketFieldOut, TicketFieldUpdate

router = APIRouter(prefix="/ticket-fields", tags=["tickets"])
category_fields_router = APIRouter(prefix="/categories", tags=["tickets"])


def _english(request: Request, locale: str) -> bool:
    return (getattr(request.state, "accept_locale", None) or locale) == "en"


def out(f: TicketField, english: bool) -> TicketFieldOut:
    return TicketFieldOut(
        id=f.id,
        key=f.key,
        category_code=f.category_code,
        label=f.label_en if english else f.label_zh,
        label_zh=f.label_zh,
        label_en=f.label_en,
        type=f.type,
        required=f.required,
        choices=[
            ChoiceOut(
                value=c["value"],
                label=c["label_en"] if english else c["label_zh"],
                label_zh=c["label_zh"],
                label_en=c["label_en"],
            )
            for c in f.choices
        ],
        position=f.position,
        is_active=f.is_active,
        created_at=f.created_at,
        updated_at=f.updated_at,
    )


@router.get("", response_model=list[TicketFieldOut], summary="Custom field definitions")
def list_fields(
    request: Request,
    viewer: CurrentViewer,
    db: Db,
    category: Annotated[
        str | None, Query(max_length=40, description="Defined on this category itself.")
    ] = None,
    active: Annotated[bool, Query(description="Only active fields.")] = False,
) -> list[TicketFieldOut]:
    english = _english(request, viewer.locale)
    rows = fields.list_definitions(db, category, include_inactive=not active)
    return [out(f, english) for f in rows]


@router.post(
    "", status_code=201, response_model=TicketFieldOut, summary="Define a field (administrators)"
)
def create_field(
    body: TicketFieldCreate, request: Request, viewer: CurrentViewer, db: Db
) -> JSONResponse:
    row = fields.create_definition(db, viewer, body)
    return created(
        request,
        out(row, _english(request, viewer.locale)),
        f"{request.scope.get('root_path', '')}/ticket-fields/{row.id}",
    )


@router.get("/{field_id}", response_model=TicketFieldOut)
def get_field(field_id: int, request: Request, viewer: CurrentViewer, db: Db) -> TicketFieldOut:
    return out(fields.get_definition(db, field_id), _english(request, viewer.locale))


@router.patch(
    "/{field_id}",
    response_model=TicketFieldOut,
    summary="Change a field (administrators); deactivate rather than delete",
)
def update_field(
    field_id: int, body: TicketFieldUpdate, request: Request, viewer: CurrentViewer, db: Db
) -> TicketFieldOut:
    row = fields.update_definition(db, viewer, field_id, body)
    return out(row, _english(request, viewer.locale))


@category_fields_router.get(
    "/{code}/fields",
    response_model=list[TicketFieldOut],
    summary="The active fields of a category's tickets, inherited ones included, in order",
)
def category_fields(
    code: str, request: Request, viewer: CurrentViewer, db: Db
) -> list[TicketFieldOut]:
    if db.get(Category, code) is None:
        raise NotFound(params={"code": code})
    english = _english(request, viewer.locale)
    return [out(f, english) for f in fields.fields_for(db, code)]
