"""Actions on customer archives, contacts and revenue. Services flush; the edge commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kefu import tree
from kefu.audit.service import diff, record, snapshot
from kefu.customers.models import Contact, Customer, Industry, RevenueRecord
from kefu.customers.schemas import (
    ContactCreate,
    ContactUpdate,
    CustomerCreate,
    CustomerUpdate,
    RevenueCreate,
)
from kefu.errors import Invalid, NotFound
from kefu.i18n import N_
from kefu.scope import Viewer, condition, get_visible
from kefu.staff.models import Staff
from kefu.units.models import Unit

AUDITED = (
    "name",
    "short_name",
    "credit_code",
    "external_id",
    "parent_id",
    "industry_code",
    "region_code",
    "owning_unit_id",
    "account_manager_id",
    "is_important",
    "is_group",
    "is_potential",
    "status",
    "notes",
)
CONTACT_AUDITED = (
    "name",
    "title",
    "phone",
    "email",
    "preferred_channel",
    "locale",
    "portal_access",
    "is_group_admin",
)


def get_customer(
    session: Session, viewer: Viewer, customer_id: int, for_update: bool = False
) -> Customer:
    return get_visible(session, Customer, customer_id, viewer, for_update=for_update)


def _check_refs(
    session: Session, viewer: Viewer, fields: dict[str, Any], customer: Customer | None = None
) -> None:
    """Every reference must exist and lie in the viewer's view; unique codes stay unique."""
    if fields.get("owning_unit_id") is not None:
        unit = session.get(Unit, fields["owning_unit_id"])
        in_view = unit is not None and (
            viewer.is_admin
            or (viewer.unit_path is not None and unit.path.startswith(viewer.unit_path))
        )
        if not in_view:
            raise Invalid.field("owning_unit_id", N_("No such unit."))
    if fields.get("account_manager_id") is not None:
        visible = session.scalar(
            select(func.count())
            .select_from(Staff)
            .where(
                Staff.id == fields["account_manager_id"],
                Staff.is_active.is_(True),
                condition(Staff, viewer),
            )
        )
        if not visible:
            raise Invalid.field("account_manager_id", N_("No such active staff member."))
    if (
        fields.get("industry_code") is not None
        and session.get(Industry, fields["industry_code"]) is None
    ):
        raise Invalid.field("industry_code", N_("Unknown industry."))
    for name in ("credit_code", "external_id"):
        value = fields.get(name)
        if value is None:
            continue
        column = getattr(Customer, name)
        stmt = select(Customer.id).where(column == value)
        if customer is not None:
            stmt = stmt.where(Customer.id != customer.id)
        if session.scalar(stmt) is not None:
            raise Invalid.field(name, N_("Another customer already has this code."))


def _parent(session: Session, viewer: Viewer, parent_id: int) -> Customer:
    parent = session.scalars(
        select(Customer).where(Customer.id == parent_id, condition(Customer, viewer))
    ).first()
    if parent is None:
        raise Invalid.field("parent_id", N_("No such customer."))
    return parent


def create_customer(session: Session, viewer: Viewer, data: CustomerCreate) -> Customer:
    fields = data.model_dump()
    _check_refs(session, viewer, fields)
    parent = _parent(session, viewer, data.parent_id) if data.parent_id is not None else None
    customer = Customer(
        **{k: v for k, v in fields.items() if k != "parent_id"},
        parent_id=parent.id if parent else None,
        depth=parent.depth + 1 if parent else 0,
        path=tree.placeholder_path(),
    )
    session.add(customer)
    session.flush()
    customer.path = tree.child_path(parent.path if parent else None, customer.id)
    session.flush()
    record(
        session,
        viewer,
        "customer.create",
        "customer",
        customer.id,
        diff({}, snapshot(customer, AUDITED)),
    )
    return customer


def update_customer(
    session: Session, viewer: Viewer, customer_id: int, data: CustomerUpdate
) -> Customer:
    customer = get_customer(session, viewer, customer_id, for_update=True)
    before = snapshot(customer, AUDITED)
    fields = data.model_dump(exclude_unset=True)
    for required in ("name", "region_code", "owning_unit_id", "status"):
        if required in fields and fields[required] is None:
            raise Invalid.field(required, N_("This field is required."))
    _check_refs(session, viewer, fields, customer)
    if "parent_id" in fields and fields["parent_id"] != customer.parent_id:
        parent = _parent(session, viewer, fields["parent_id"]) if fields["parent_id"] else None
        if parent is not None and tree.would_cycle(customer.path, parent.path):
            raise Invalid.field(
                "parent_id", N_("A customer cannot be a branch of itself or of its branches.")
            )
        tree.move_subtree(session, Customer, customer, parent)
        session.refresh(customer)
    for name, value in fields.items():
        if name != "parent_id":
            setattr(customer, name, value)
    session.flush()
    changes = diff(before, snapshot(customer, AUDITED))
    if changes:
        record(session, viewer, "customer.update", "customer", customer.id, changes)
    return customer


# --- contacts -------------------------------------------------------------------------------


def add_contact(session: Session, viewer: Viewer, customer_id: int, data: ContactCreate) -> Contact:
    customer = get_customer(session, viewer, customer_id)
    if data.is_group_admin and not customer.is_group:
        raise Invalid.field(
            "is_group_admin",
            N_("Only a contact of a group customer can be its group administrator."),
        )
    contact = Contact(customer_id=customer.id, **data.model_dump())
    session.add(contact)
    session.flush()
    record(
        session,
        viewer,
        "contact.create",
        "contact",
        contact.id,
        diff({}, snapshot(contact, CONTACT_AUDITED))
        | {"customer_id": {"before": None, "after": customer.id}},
    )
    return contact


def get_contact(session: Session, viewer: Viewer, customer_id: int, contact_id: int) -> Contact:
    customer = get_customer(session, viewer, customer_id)
    contact = session.get(Contact, contact_id)
    if contact is None or contact.customer_id != customer.id:
        raise NotFound()
    return contact


def update_contact(
    session: Session, viewer: Viewer, customer_id: int, contact_id: int, data: ContactUpdate
) -> Contact:
    contact = get_contact(session, viewer, customer_id, contact_id)
    before = snapshot(contact, CONTACT_AUDITED)
    fields = data.model_dump(exclude_unset=True)
    if fields.get("name", "") is None:
        raise Invalid.field("name", N_("This field is required."))
    for name, value in fields.items():
        setattr(contact, name, value)
    session.flush()
    changes = diff(before, snapshot(contact, CONTACT_AUDITED))
    if changes:
        record(session, viewer, "contact.update", "contact", contact.id, changes)
    return contact


def delete_contact(session: Session, viewer: Viewer, customer_id: int, contact_id: int) -> None:
    contact = get_contact(session, viewer, customer_id, contact_id)
    record(
        session,
        viewer,
        "contact.delete",
        "contact",
        contact.id,
        diff(snapshot(contact, CONTACT_AUDITED), {}),
    )
    session.delete(contact)
    session.flush()


# --- revenue --------------------------------------------------------------------------------


def add_revenue(
    session: Session, viewer: Viewer, customer_id: int, data: RevenueCreate
) -> RevenueRecord:
    customer = get_customer(session, viewer, customer_id)
    row = RevenueRecord(customer_id=customer.id, **data.model_dump())
    session.add(row)
    session.flush()
    record(
        session,
        viewer,
        "revenue.create",
        "revenue_record",
        row.id,
        {
            "customer_id": {"before": None, "after": customer.id},
            "date": {"before": None, "after": row.date.isoformat()},
            "amount": {"before": None, "after": str(row.amount)},
        },
    )
    return row
