"""Saved views (/api/v1/ticket-views) and the ticket list's filters: scope, sharing, rights."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from kefu import clock
from kefu.audit.models import AuditEntry
from kefu.scope import SYSTEM
from kefu.tickets import service as tickets
from kefu.tickets.schemas import TicketCreate
from tests.factories import make_customer, make_staff, token_for
from tests.scope_matrix import build_org, check_scope, list_all

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def tuesday_morning():
    clock.set_now(lambda: datetime(2026, 11, 24, 10, tzinfo=SH).astimezone(UTC))


def open_ticket(db, customer, subject="专线中断", **kw):
    data = TicketCreate(
        customer_id=customer.id,
        category_code=kw.pop("category_code", "technical_support"),
        subject=subject,
        priority=kw.pop("priority", "high"),
    )
    t = tickets.open_ticket(db, SYSTEM, data, channel="phone")
    db.commit()
    return t


def save_view(client, h, name="我的视图", status=201, **body):
    r = client.post("/api/v1/ticket-views", headers=h, json={"name": name, **body})
    assert r.status_code == status, r.text
    return r.json()


def test_scope_matrix_ticket_views(client, db):
    org = build_org(db)
    records, ancestors = {}, {}
    for key, unit in org.units.items():
        v = save_view(client, org.headers["admin"], f"共享-{key}", unit_id=unit.id)
        records[v["id"]] = unit
        ancestors[v["id"]] = unit.path

    def above(key):  # shared with the viewer's unit's ancestors: usable, so listed
        mine = org.units[key].path
        return [i for i, p in ancestors.items() if mine.startswith(p)]

    # Personal views of each manager: seen by their owner (and the admin) only. Shared views:
    # by the subtree of the unit (to use) and by the managers above it (to manage).
    personal = {key: save_view(client, org.headers[key], f"个人-{key}")["id"] for key in org.units}
    for key in [*org.units, "admin"]:
        got = {v["id"] for v in list_all(client, "/api/v1/ticket-views", org.headers[key])}
        if key == "admin":
            want = set(records) | set(personal.values())
        else:
            below = org.subtree(key)
            want = {i for i, u in records.items() if u.id in below} | set(above(key))
            want.add(personal[key])
        assert got == want, key
        for vid in [*records, *personal.values()]:
            r = client.get(f"/api/v1/ticket-views/{vid}", headers=org.headers[key])
            assert r.status_code == (200 if vid in want else 404), (key, vid)
            if vid not in want:
                for method, body in (("PATCH", {"version": 1, "name": "越界"}), ("DELETE", None)):
                    w = client.request(
                        method, f"/api/v1/ticket-views/{vid}", headers=org.headers[key], json=body
                    )
                    assert w.status_code == 404, (key, method, vid)


def test_scope_matrix_ticket_list_through_a_view(client, db):
    """The ticket list with ?view= passes the scope matrix: a view never widens."""
    org = build_org(db, roles=("supervisor",))
    records = {}
    for unit in org.units.values():
        t = open_ticket(db, make_customer(db, unit))
        records[t.id] = unit
    wide = save_view(
        client,
        org.headers["province"],
        "全省未分派",
        unit_id=org.province.id,
        filters={"state": None, "unit_id": org.province.id},
    )
    check_scope(
        client,
        org,
        list_url=f"/api/v1/tickets?view={wide['id']}",
        detail_url=lambda i: f"/api/v1/tickets/{i}",
        records=records,
    )


def test_filters_of_a_view_and_parameters_that_win(client, db):
    org = build_org(db, roles=("supervisor",))
    h = org.headers["city_a"]
    agent = make_staff(db, org.county_x, username="agent-x")
    customer = make_customer(db, org.county_x)
    a = open_ticket(db, customer, "甲", priority="urgent")
    b = open_ticket(db, customer, "乙", priority="low")
    c = open_ticket(db, make_customer(db, org.county_y), "丙", priority="urgent")
    assert a.assignee_id == agent.id == b.assignee_id and c.assignee_id is None
    urgent = save_view(client, h, "紧急", filters={"priority": "urgent"})
    ids = lambda url, hh=h: {t["id"] for t in list_all(client, url, hh)}  # noqa: E731
    assert ids(f"/api/v1/tickets?view={urgent['id']}") == {a.id, c.id}
    assert ids(f"/api/v1/tickets?view={urgent['id']}&priority=low") == {b.id}
    assert ids(f"/api/v1/tickets?view={urgent['id']}&assignee=unassigned") == {c.id}
    assert ids(f"/api/v1/tickets?view={urgent['id']}&unit_id={org.county_x.id}") == {a.id}
    agent_h = token_for(db, agent)
    assert ids("/api/v1/tickets?assignee=me", agent_h) == {a.id, b.id}
    assert ids("/api/v1/tickets?assignee=anyone&priority=low", agent_h) == {b.id}
    # State: open_states by default in a view; resolved ones only when asked.
    tickets.update_ticket(
        db, SYSTEM, b.id, tickets.TicketUpdate(version=b.version, state="resolved")
    )
    db.commit()
    everything = save_view(client, h, "全部", filters={})
    assert ids(f"/api/v1/tickets?view={everything['id']}") == {a.id, c.id}
    assert ids(f"/api/v1/tickets?view={everything['id']}&state=resolved") == {b.id}
    assert ids("/api/v1/tickets") == {a.id, b.id, c.id}
    assert ids("/api/v1/tickets?state=open_states") == {a.id, c.id}
    # Someone else's view id answers 404 in the list, as everywhere.
    other = save_view(client, org.headers["county_z"], "别人的")
    r = client.get(f"/api/v1/tickets?view={other['id']}", headers=h)
    assert r.status_code == 404


def test_sharing_rights_versions_and_audit(client, db):
    org = build_org(db, roles=("supervisor",))
    agent_h = token_for(db, make_staff(db, org.county_x, username="plain-agent"))
    # An agent keeps views to themselves.
    r = client.post(
        "/api/v1/ticket-views",
        headers=agent_h,
        json={"name": "共享", "unit_id": org.county_x.id},
    )
    assert r.status_code == 403
    # A supervisor shares within their subtree only.
    bad = save_view(client, org.headers["city_a"], "乙市", status=422, unit_id=org.city_b.id)
    assert bad["errors"][0]["field"] == "unit_id"
    bad = save_view(
        client, org.headers["city_a"], "坏", status=422, filters={"category": "astrology"}
    )
    assert bad["errors"][0]["field"] == "filters.category.0"
    bad = save_view(client, org.headers["city_a"], "坏", status=422, filters={"tier": "Z"})
    assert bad["errors"][0]["field"].startswith("filters")
    shared = save_view(
        client, org.headers["city_a"], "甲市超时", unit_id=org.city_a.id, filters={"breached": True}
    )
    assert shared["shared"] is True and shared["filters"]["breached"] is True
    # The county below may use it but not change it; the city may.
    h_x = org.headers["county_x"]
    assert client.get(f"/api/v1/ticket-views/{shared['id']}", headers=h_x).status_code == 200
    r = client.patch(
        f"/api/v1/ticket-views/{shared['id']}", headers=h_x, json={"version": 1, "name": "改"}
    )
    assert r.status_code == 403
    r = client.patch(
        f"/api/v1/ticket-views/{shared['id']}",
        headers=org.headers["city_a"],
        json={"version": 1, "name": "甲市已超时"},
    )
    assert r.status_code == 200 and r.json()["version"] == 2
    stale = client.patch(
        f"/api/v1/ticket-views/{shared['id']}",
        headers=org.headers["province"],
        json={"version": 1, "name": "旧"},
    )
    assert stale.status_code == 409
    r = client.delete(f"/api/v1/ticket-views/{shared['id']}", headers=org.headers["province"])
    assert r.status_code == 204
    assert client.get(f"/api/v1/ticket-views/{shared['id']}", headers=h_x).status_code == 404
    actions = db.scalars(
        select(AuditEntry.action).where(
            AuditEntry.object_type == "ticket_view", AuditEntry.object_id == str(shared["id"])
        )
    ).all()
    assert sorted(actions) == ["ticket_view.create", "ticket_view.delete", "ticket_view.update"]
