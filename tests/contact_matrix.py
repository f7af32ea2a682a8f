"""The contact-scope matrix: the scope approach of `scope_matrix.py`, for the portal.

`build_customers()` makes a group customer G with two branches B1 and B2, a stranger S (all
owned by one county), a contact with a portal account for each — G's contact also as group
administrator, plus a plain contact of G — and a ticket for each customer. `check_contacts()`
then proves, for portal pages, that each contact lists exactly the tickets of their
customer (the group administrator also the branches'), gets 404 for every other ticket's
page, and 404 for every write to it. `check_contacts_api()` proves the same for the contact
API under /api/v1/portal, signed in with a contact token.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from kefu.customers import service as customer_service
from kefu.customers.models import Contact, Customer
from kefu.customers.schemas import ContactCreate
from kefu.portal import service as portal
from kefu.portal.schemas import SetPassword
from kefu.scope import SYSTEM
from kefu.tickets import service as tickets
from kefu.tickets.schemas import TicketCreate
from kefu.units.models import Unit
from tests.factories import make_customer, make_unit
from tests.web.helpers import token_in

PORTAL_PASSWORD = "portal pass 42"


def make_contact(
    db: Session,
    customer: Customer,
    name: str,
    email: str | None = None,
    phone: str | None = None,
    *,
    group_admin: bool = False,
    portal_access: bool = True,
    locale: str = "zh_CN",
) -> Contact:
    data = ContactCreate(
        name=name,
        email=email,
        phone=phone,
        portal_access=portal_access,
        is_group_admin=group_admin,
        locale=locale,
    )  # type: ignore[call-arg]
    contact = customer_service.add_contact(db, SYSTEM, customer.id, data)
    db.flush()
    return contact


def give_account(db: Session, contact: Contact, password: str = PORTAL_PASSWORD) -> None:
    """Invite and accept at once, as if the contact had followed the link."""
    made = portal.invite(db, SYSTEM, contact.customer_id, contact.id)
    portal.accept_invitation(db, made.token, SetPassword(password=password, confirm=password))
    db.flush()


def portal_login(client: TestClient, login: str, password: str = PORTAL_PASSWORD) -> Any:
    page = client.get("/portal/login")
    assert page.status_code == 200
    data = {"login": login, "password": password, "csrf_token": token_in(page.text)}
    return client.post("/portal/login", data=data, follow_redirects=False)


def portal_post(client: TestClient, url: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
    """Post a portal form with the CSRF token of the contact's session."""
    token = token_in(client.get("/portal").text)
    kw.setdefault("follow_redirects", False)
    return client.post(url, data={"csrf_token": token, **(data or {})}, **kw)


def open_for(db: Session, customer: Customer, subject: str, **kw: Any) -> int:
    data = TicketCreate(
        customer_id=customer.id, category_code="technical_support", subject=subject, **kw
    )  # type: ignore[call-arg]
    ticket = tickets.open_ticket(db, SYSTEM, data, channel="phone")
    db.flush()
    return ticket.id


@dataclass
class Customers:
    unit: Unit
    group: Customer
    branch_1: Customer
    branch_2: Customer
    stranger: Customer
    contacts: dict[str, Contact] = field(default_factory=dict)  # key → contact
    logins: dict[str, str] = field(default_factory=dict)  # key → e-mail to sign in with
    tickets: dict[int, Customer] = field(default_factory=dict)  # ticket id → its customer

    def expected(self, key: str) -> set[int]:
        mine = {
            "group_admin": {self.group.id, self.branch_1.id, self.branch_2.id},
            "group_plain": {self.group.id},
            "branch_1": {self.branch_1.id},
            "stranger": {self.stranger.id},
        }[key]
        return {tid for tid, c in self.tickets.items() if c.id in mine}


def build_customers(db: Session) -> Customers:
    unit = make_unit(db, "矩阵县", region_code="330106")
    group = make_customer(db, unit, "矩阵集团", is_group=True)
    cs = Customers(
        unit,
        group,
        make_customer(db, unit, "矩阵集团一分公司", parent=group),
        make_customer(db, unit, "矩阵集团二分公司", parent=group),
        make_customer(db, unit, "无关客户有限公司"),
    )
    people = {
        "group_admin": (group, "g.admin@matrix.cn", True),
        "group_plain": (group, "g.plain@matrix.cn", False),
        "branch_1": (cs.branch_1, "b1@matrix.cn", False),
        "stranger": (cs.stranger, "s@stranger.cn", False),
    }
    for key, (customer, email, admin) in people.items():
        contact = make_contact(db, customer, f"联系人{key}", email, group_admin=admin)
        give_account(db, contact)
        cs.contacts[key] = contact
        cs.logins[key] = email
    for customer in (group, cs.branch_1, cs.branch_2, cs.stranger):
        for n in range(2):
            cs.tickets[open_for(db, customer, f"{customer.name}的问题{n}")] = customer
    db.commit()
    return cs


def listed(client: TestClient, url: str = "/portal?show=all") -> set[int]:
    """Every ticket id the portal's list shows, following its pages."""
    found: set[int] = set()
    for _ in range(100):
        r = client.get(url)
        assert r.status_code == 200, r.text
        found |= {int(i) for i in re.findall(r'href="/portal/tickets/(\d+)"', r.text)}
        more = re.search(r'href="(/portal\?[^"]*cursor=[^"]+)"[^>]*>', r.text)
        if not more:
            return found
        url = more.group(1).replace("&amp;", "&")
    raise AssertionError("pagination never ended")


def check_contacts(
    make_client: Callable[[], TestClient],
    cs: Customers,
    *,
    detail_url: Callable[[int], str] = lambda t: f"/portal/tickets/{t}",
    writes: tuple[tuple[str, dict[str, Any]], ...] = (),
) -> None:
    """Each contact lists exactly their tickets, and reads or writes any other one as 404."""
    for key, login in cs.logins.items():
        client = make_client()
        r = portal_login(client, login)
        assert r.status_code == 303, f"{key}: {r.status_code}"
        expected = cs.expected(key)
        assert listed(client) == expected, key
        for tid in cs.tickets:
            want = 200 if tid in expected else 404
            got = client.get(detail_url(tid)).status_code
            assert got == want, f"{key} GET {detail_url(tid)}: {got}"
            if want == 404:
                for suffix, data in writes:
                    w = portal_post(client, f"/portal/tickets/{tid}/{suffix}", data)
                    assert w.status_code == 404, f"{key} POST {tid}/{suffix}: {w.status_code}"


# --- the contact API (/api/v1/portal) --------------------------------------------------------

API = "/api/v1/portal"


def api_token(client: TestClient, login: str, password: str = PORTAL_PASSWORD) -> dict[str, str]:
    """Sign a contact in to the contact API; the Authorization header to send."""
    r = client.post(f"{API}/token", json={"login": login, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def api_listed(client: TestClient, headers: dict[str, str], show: str = "all") -> set[int]:
    """Every ticket id the contact API lists, following its cursor."""
    found: set[int] = set()
    params: dict[str, Any] = {"show": show, "limit": 3}
    for _ in range(100):
        r = client.get(f"{API}/tickets", params=params, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        found |= {item["id"] for item in body["items"]}
        if not body["next_cursor"]:
            return found
        params["cursor"] = body["next_cursor"]
    raise AssertionError("pagination never ended")


def check_contacts_api(
    client: TestClient,
    cs: Customers,
    *,
    reads: tuple[str, ...] = ("", "/attachments"),
    writes: tuple[tuple[str, dict[str, Any]], ...] = (),
) -> None:
    """Through the contact API: each contact lists exactly their tickets, reads every other
    ticket (and its files) as 404 and every write to it as 404."""
    for key, login in cs.logins.items():
        headers = api_token(client, login)
        expected = cs.expected(key)
        assert api_listed(client, headers) == expected, key
        for tid in cs.tickets:
            want = 200 if tid in expected else 404
            for suffix in reads:
                got = client.get(f"{API}/tickets/{tid}{suffix}", headers=headers)
                assert got.status_code == want, f"{key} GET {tid}{suffix}: {got.status_code}"
                if want == 404:
                    assert got.headers["content-type"].startswith("application/problem+json")
            if want == 404:
                for suffix, data in writes:
                    w = client.post(f"{API}/tickets/{tid}/{suffix}", json=data, headers=headers)
                    assert w.status_code == 404, f"{key} POST {tid}/{suffix}: {w.status_code}"
