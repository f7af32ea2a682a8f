"""Read-side selects of customers, contacts and revenue."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from kefu.customers.models import Contact, Customer, Industry, RevenueRecord
from kefu.db import is_postgres
from kefu.scope import Viewer, path_in_subtree, visible
from kefu.units.models import Unit


def customers(
    session: Session,
    viewer: Viewer,
    *,
    q: str | None = None,
    tier: str | None = None,
    service_level: str | None = None,
    status: str | None = None,
    unit_id: int | None = None,
    parent_id: int | None = None,
    important: bool | None = None,
    account_manager_id: int | None = None,
) -> Select[Any]:
    stmt = visible(select(Customer), Customer, viewer)
    if q:
        like = q.strip()
        stmt = stmt.where(
            or_(
                Customer.name.contains(like, autoescape=True),
                Customer.short_name.contains(like, autoescape=True),
                Customer.credit_code == like.upper(),
                Customer.external_id == like,
            )
        )
    if tier:
        stmt = stmt.where(Customer.tier == tier)
    if service_level:
        stmt = stmt.where(Customer.service_level == service_level)
    if status:
        stmt = stmt.where(Customer.status == status)
    if unit_id is not None:
        path = session.scalar(select(Unit.path).where(Unit.id == unit_id))
        stmt = stmt.where(
            Customer.owning_unit_id.in_(
                select(Unit.id).where(path_in_subtree(Unit.path, path or "/none/"))
            )
        )
    if parent_id is not None:
        stmt = stmt.where(Customer.parent_id == parent_id)
    if important is not None:
        stmt = stmt.where(Customer.is_important.is_(important))
    if account_manager_id is not None:
        stmt = stmt.where(Customer.account_manager_id == account_manager_id)
    return stmt


def contacts(customer_id: int) -> Select[Any]:
    return select(Contact).where(Contact.customer_id == customer_id)


def revenue(customer_id: int, since: date | None = None, until: date | None = None) -> Select[Any]:
    stmt = select(RevenueRecord).where(RevenueRecord.customer_id == customer_id)
    if since:
        stmt = stmt.where(RevenueRecord.date >= since)
    if until:
        stmt = stmt.where(RevenueRecord.date < until)
    return stmt


def monthly_revenue(session: Session, customer_id: int, since: date) -> list[tuple[str, Decimal]]:
    """Revenue per calendar month from `since` (for the 360 page's chart)."""
    month = (
        func.to_char(RevenueRecord.date, "YYYY-MM")
        if is_postgres(session)
        else func.strftime("%Y-%m", RevenueRecord.date)
    )
    rows = session.execute(
        select(month.label("m"), func.sum(RevenueRecord.amount))
        .where(RevenueRecord.customer_id == customer_id, RevenueRecord.date >= since)
        .group_by("m")
        .order_by("m")
    ).all()
    return [(m, Decimal(str(total))) for m, total in rows]


def industries(session: Session) -> list[Industry]:
    return list(
        session.scalars(
            select(Industry).where(Industry.is_active.is_(True)).order_by(Industry.sort_order)
        )
    )
