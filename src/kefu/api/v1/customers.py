from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from kefu.api.v1.common import Cursor, IdempotencyKey, Limit, PageOut, idempotent_create
from kefu.api.v1.deps import CurrentViewer, Db
from kefu.clock import now
from kefu.customers import queries
from kefu.customers import service as customers
from kefu.customers.models import Contact, Customer, RevenueRecord
from kefu.customers.schemas import (
    ContactCreate,
    ContactOut,
    ContactUpdate,
    CustomerCreate,
    CustomerOut,
    CustomerUpdate,
    MonthlyRevenue,
    RevenueCreate,
    RevenueOut,
)
from kefu.customers.timeline import timeline
from kefu.i18n import gettext, set_locale
from kefu.pagination import paginate

router = APIRouter(prefix="/customers", tags=["customers"])
industries_router = APIRouter(prefix="/industries", tags=["customers"])

SORTS = {
    "id": ((Customer.id,), False),
    "name": ((Customer.name, Customer.id), False),
    "revenue": ((Customer.revenue_12m, Customer.id), True),
}


@router.get("", response_model=PageOut[CustomerOut], summary="Customers the caller sees")
def list_customers(
    viewer: CurrentViewer,
    db: Db,
    limit: Limit = 50,
    cursor: Cursor = None,
    q: Annotated[
        str | None,
        Query(max_length=100, description="Name contains, or exact credit code / external id."),
    ] = None,
    tier: Annotated[Literal["A", "B", "C"] | None, Query()] = None,
    service_level: Annotated[Literal["5A", "4A", "3A", "2A", "1A"] | None, Query()] = None,
    status: Annotated[Literal["active", "dormant", "lost"] | None, Query()] = None,
    unit_id: Annotated[int | None, Query(description="Owned by this unit or below.")] = None,
    parent_id: Annotated[int | None, Query(description="Branches of this customer.")] = None,
    important: bool | None = None,
    account_manager_id: int | None = None,
    sort: Annotated[
        Literal["id", "name", "revenue"],
        Query(description="revenue: trailing-12-month revenue, highest first."),
    ] = "id",
) -> PageOut[CustomerOut]:
    stmt = queries.customers(
        db,
        viewer,
        q=q,
        tier=tier,
        service_level=service_level,
        status=status,
        unit_id=unit_id,
        parent_id=parent_id,
        important=important,
        account_manager_id=account_manager_id,
    )
    key, descending = SORTS[sort]
    page = paginate(db, stmt, key=key, limit=limit, cursor=cursor, descending=descending)
    return PageOut[CustomerOut](
        items=[CustomerOut.model_validate(c) for c in page.items], next_cursor=page.next_cursor
    )


@router.post("", status_code=201, response_model=CustomerOut, summary="Create a customer")
def create_customer(
    body: CustomerCreate,
    request: Request,
    viewer: CurrentViewer,
    db: Db,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create() -> tuple[CustomerOut, str]:
        customer = customers.create_customer(db, viewer, body)
        return CustomerOut.model_validate(customer), (
            f"{request.scope.get('root_path', '')}/customers/{customer.id}"
        )

    return idempotent_create(request, db, viewer, idempotency_key, body, create)


@router.get("/{customer_id}", response_model=CustomerOut)
def get_customer(customer_id: int, viewer: CurrentViewer, db: Db) -> CustomerOut:
    return CustomerOut.model_validate(customers.get_customer(db, viewer, customer_id))


@router.patch(
    "/{customer_id}",
    response_model=CustomerOut,
    summary="Change a customer; a new parent_id moves it with its branches",
)
def update_customer(
    customer_id: int, body: CustomerUpdate, viewer: CurrentViewer, db: Db
) -> CustomerOut:
    return CustomerOut.model_validate(customers.update_customer(db, viewer, customer_id, body))


@router.get("/{customer_id}/contacts", response_model=PageOut[ContactOut])
def list_contacts(
    customer_id: int, viewer: CurrentViewer, db: Db, limit: Limit = 50, cursor: Cursor = None
) -> PageOut[ContactOut]:
    customer = customers.get_customer(db, viewer, customer_id)
    page = paginate(db, queries.contacts(customer.id), key=Contact.id, limit=limit, cursor=cursor)
    return PageOut[ContactOut](
        items=[ContactOut.model_validate(c) for c in page.items], next_cursor=page.next_cursor
    )


@router.post("/{customer_id}/contacts", status_code=201, response_model=ContactOut)
def add_contact(
    customer_id: int,
    body: ContactCreate,
    request: Request,
    viewer: CurrentViewer,
    db: Db,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create() -> tuple[ContactOut, str]:
        contact = customers.add_contact(db, viewer, customer_id, body)
        return ContactOut.model_validate(contact), (
            f"{request.scope.get('root_path', '')}/customers/{customer_id}/contacts/{contact.id}"
        )

    return idempotent_create(request, db, viewer, idempotency_key, body, create)


@router.get("/{customer_id}/contacts/{contact_id}", response_model=ContactOut)
def get_contact(customer_id: int, contact_id: int, viewer: CurrentViewer, db: Db) -> ContactOut:
    return ContactOut.model_validate(customers.get_contact(db, viewer, customer_id, contact_id))


@router.patch("/{customer_id}/contacts/{contact_id}", response_model=ContactOut)
def update_contact(
    customer_id: int, contact_id: int, body: ContactUpdate, viewer: CurrentViewer, db: Db
) -> ContactOut:
    return ContactOut.model_validate(
        customers.update_contact(db, viewer, customer_id, contact_id, body)
    )


@router.delete("/{customer_id}/contacts/{contact_id}", status_code=204)
def delete_contact(customer_id: int, contact_id: int, viewer: CurrentViewer, db: Db) -> Response:
    customers.delete_contact(db, viewer, customer_id, contact_id)
    return Response(status_code=204)


@router.get(
    "/{customer_id}/revenue",
    response_model=PageOut[RevenueOut],
    summary="Revenue records, newest first",
)
def list_revenue(
    customer_id: int,
    viewer: CurrentViewer,
    db: Db,
    limit: Limit = 50,
    cursor: Cursor = None,
    since: date | None = None,
    until: date | None = None,
) -> PageOut[RevenueOut]:
    customer = customers.get_customer(db, viewer, customer_id)
    page = paginate(
        db,
        queries.revenue(customer.id, since, until),
        key=(RevenueRecord.date, RevenueRecord.id),
        limit=limit,
        cursor=cursor,
        descending=True,
    )
    return PageOut[RevenueOut](
        items=[RevenueOut.model_validate(r) for r in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/{customer_id}/revenue/monthly",
    response_model=list[MonthlyRevenue],
    summary="Revenue per month over the last N months",
)
def monthly_revenue(
    customer_id: int,
    viewer: CurrentViewer,
    db: Db,
    months: Annotated[int, Query(ge=1, le=120)] = 36,
) -> list[MonthlyRevenue]:
    customer = customers.get_customer(db, viewer, customer_id)
    since = (now().date().replace(day=1) - timedelta(days=31 * (months - 1))).replace(day=1)
    return [
        MonthlyRevenue(month=m, amount=a)
        for m, a in queries.monthly_revenue(db, customer.id, since)
    ]


@router.post("/{customer_id}/revenue", status_code=201, response_model=RevenueOut)
def add_revenue(
    customer_id: int,
    body: RevenueCreate,
    request: Request,
    viewer: CurrentViewer,
    db: Db,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create() -> tuple[RevenueOut, str]:
        row = customers.add_revenue(db, viewer, customer_id, body)
        return RevenueOut.model_validate(row), (
            f"{request.scope.get('root_path', '')}/customers/{customer_id}/revenue"
        )

    return idempotent_create(request, db, viewer, idempotency_key, body, create)


class IndustryOut(BaseModel):
    code: str
    name: str


@industries_router.get("", response_model=list[IndustryOut], summary="The industry list")
def list_industries(request: Request, viewer: CurrentViewer, db: Db) -> list[IndustryOut]:
    english = (getattr(request.state, "locale", None) or viewer.locale) == "en"
    return [
        IndustryOut(code=i.code, name=i.name_en if english else i.name_zh)
        for i in queries.industries(db)
    ]


class TimelineOut(BaseModel):
    at: datetime
    kind: str
    text: str
    actor: str | None
    ref: str | None


@router.get(
    "/{customer_id}/timeline",
    response_model=list[TimelineOut],
    summary="The customer's activity, newest first (each capability adds its events)",
)
def customer_timeline(
    customer_id: int,
    request: Request,
    viewer: CurrentViewer,
    db: Db,
    before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[TimelineOut]:
    set_locale(getattr(request.state, "accept_locale", None) or viewer.locale)
    return [
        TimelineOut(
            at=i.at, kind=i.kind, text=gettext(i.title, **i.params), actor=i.actor, ref=i.ref
        )
        for i in timeline(db, viewer, customer_id, before, limit)
    ]
