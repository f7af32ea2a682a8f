"""Demo portal accounts: a few contacts sign in with the demo password, so the customer
portal shows real tickets on first start — a group administrator (who also sees the
branches' tickets) and contacts of customers with many tickets."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kefu.audit.service import record
from kefu.auth import passwords
from kefu.clock import now
from kefu.customers.models import Contact, Customer
from kefu.demo.organisation import DEMO_PASSWORD
from kefu.portal.models import PortalAccount
from kefu.scope import Viewer
from kefu.tickets.models import Ticket


def build(
    session: Session, viewer: Viewer, count: int = 3, progress: Callable[[str], None] = print
) -> list[str]:
    """Give portal passwords to a group administrator and to the contacts of the customers
    with the most tickets; returns the e-mail addresses they sign in with."""
    if session.scalar(select(func.count()).select_from(PortalAccount)):
        progress("portal accounts exist already; left as they are")
        return list(
            session.scalars(select(PortalAccount.email).order_by(PortalAccount.id).limit(count + 1))
        )
    admin = session.scalars(
        select(Contact)
        .join(Customer, Customer.id == Contact.customer_id)
        .where(
            Contact.is_group_admin.is_(True),
            Contact.portal_access.is_(True),
            Contact.email.is_not(None),
            Customer.is_group.is_(True),
        )
        .order_by(Contact.id)
        .limit(1)
    ).first()
    busiest = (
        select(Ticket.customer_id, func.count().label("n"))
        .group_by(Ticket.customer_id)
        .order_by(func.count().desc(), Ticket.customer_id)
        .limit(count * 5)
        .subquery()
    )
    others = list(
        session.scalars(
            select(Contact)
            .join(busiest, busiest.c.customer_id == Contact.customer_id)
            .where(
                Contact.portal_access.is_(True),
                Contact.is_group_admin.is_(False),
                Contact.email.is_not(None),
            )
            .order_by(busiest.c.n.desc(), Contact.id)
            .limit(count)
        )
    )
    chosen = ([admin] if admin else []) + [c for c in others if admin is None or c.id != admin.id]
    shared = passwords.hash_password(DEMO_PASSWORD)
    at = now()
    emails = []
    for contact in chosen[:count]:
        email = (contact.email or "").strip().lower()
        session.add(
            PortalAccount(
                contact_id=contact.id,
                email=email,
                password_hash=shared,
                failed_logins=0,
                activated_at=at,
                created_at=at,
                updated_at=at,
            )
        )
        record(
            session,
            viewer,
            "portal.activate",
            "contact",
            contact.id,
            {"email": {"before": None, "after": email}},
        )
        emails.append(email)
    session.flush()
    progress(f"{len(emails)} portal accounts")
    return emails
