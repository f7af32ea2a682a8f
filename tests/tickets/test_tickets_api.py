from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from kefu import clock
from kefu.auth import service as auth
from kefu.notifications.models import OutboxMessage
from kefu.scope import SYSTEM
from kefu.tickets.models import RoutingRule, Ticket
from tests.factories import make_customer, make_staff, make_unit, token_for
from tests.scope_matrix import build_org, check_scope

SH = ZoneInfo("Asia/Shanghai")
TUESDAY_10 = datetime(2026, 11, 24, 10, tzinfo=SH)


@pytest.fixture(autouse=True)
def tuesday_morning():
    clock.set_now(lambda: TUESDAY_10.astimezone(UTC))


def integration_token(db, staff):
    plain, _ = auth.issue_token(db, SYSTEM, staff, kind="integration", name="test")
    db.commit()
    return {"Authorization": f"Bearer {plain}"}


def open_ticket(client, h, customer_id, **kw):
    body = {
        "customer_id": customer_id,
        "category_code": "technical_support",
        "subject": "专线中断",
        "priority": "high",
        **kw,
    }
    r = client.post("/api/v1/tickets", headers=h, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_scope_matrix_tickets(client, db):
    org = build_org(db)
    records = {}
    for unit in org.units.values():
        customer = make_customer(db, unit)
        db.commit()
        t = open_ticket(client, org.headers["admin"], customer.id)
        records[t["id"]] = unit
    check_scope(
        client,
        org,
        list_url="/api/v1/tickets",
        detail_url=lambda i: f"/api/v1/tickets/{i}",
        records=records,
        write=("PATCH", {"version": 1, "priority": "low"}),
    )
    other = next(i for i, u in records.items() if u.id == org.county_y.id)
    h = org.headers["county_x"]
    assert client.get(f"/api/v1/tickets/{other}/events", headers=h).status_code == 404
    assert (
        client.post(
            f"/api/v1/tickets/{other}/messages", headers=h, json={"body": "越界"}
        ).status_code
        == 404
    )


def test_intake_routes_assigns_and_sets_sla(client, db):
    county = make_unit(db, "西湖", region_code="330106")
    admin_h = token_for(db, make_staff(db, county, roles=("admin",)))
    busy = make_staff(db, county, username="busy.agent")
    idle = make_staff(db, county, username="idle.agent")
    customer = make_customer(db, county)
    customer.service_level = "4A"
    db.commit()
    first = open_ticket(client, admin_h, customer.id)
    assert first["number"] == f"T2026-{first['id']:07d}"
    assert first["handling_unit_id"] == county.id and first["state"] == "new"
    assert first["assignee_id"] in (busy.id, idle.id)
    second = open_ticket(client, admin_h, customer.id)
    assert {first["assignee_id"], second["assignee_id"]} == {busy.id, idle.id}  # least loaded
    # 4A high: first response 60, resolution 960 business minutes (8:30–12, 13:30–17:30).
    assert datetime.fromisoformat(first["first_response_due"]) == datetime(
        2026, 11, 24, 11, tzinfo=SH
    )
    # 960 = 360 on Tuesday (from 10:00) + 450 on Wednesday + 150 on Thursday from 8:30.
    assert datetime.fromisoformat(first["resolution_due"]) == datetime(2026, 11, 26, 11, tzinfo=SH)
    customer.account_manager_id = idle.id
    db.commit()
    third = open_ticket(client, admin_h, customer.id)
    assert third["assignee_id"] == idle.id
    events = client.get(f"/api/v1/tickets/{third['id']}/events", headers=admin_h).json()
    kinds = [(e["kind"], e["data"].get("rule")) for e in events["items"]]
    assert ("route", "owning_unit") in kinds and ("assign", "account_manager") in kinds
    outbox = db.scalars(select(OutboxMessage).where(OutboxMessage.topic == "ticket.created")).all()
    assert len(outbox) == 3 and outbox[-1].recipient == f"staff:{idle.id}"


def test_category_function_and_linked_service(client, db):
    province = make_unit(db, "省", region_code="330000", functions=["technical", "service"])
    city = make_unit(db, "市", province, region_code="330100")
    county = make_unit(db, "县", city, region_code="330106")
    other_county = make_unit(db, "异地县", city, region_code="330110")
    h = token_for(db, make_staff(db, province, roles=("admin",)))
    customer = make_customer(db, county)
    db.add(
        RoutingRule(
            kind="category_function", category_code="technical_support", function="technical"
        )
    )
    db.add(RoutingRule(kind="site_region"))
    db.commit()
    t = open_ticket(client, h, customer.id)
    assert t["handling_unit_id"] == province.id and t["owning_unit_id"] == county.id
    onsite = open_ticket(
        client, h, customer.id, category_code="fault_repair", site_region_code="330110"
    )
    assert onsite["handling_unit_id"] == other_county.id
    # The owning county keeps visibility and is told.
    county_h = token_for(db, make_staff(db, county, roles=("agent",)))
    assert client.get(f"/api/v1/tickets/{onsite['id']}", headers=county_h).status_code == 200
    linked = db.scalars(
        select(OutboxMessage).where(
            OutboxMessage.topic == "ticket.linked",
            OutboxMessage.dedupe_key.startswith(f"ticket.linked:{onsite['id']}:"),
        )
    ).one()
    assert linked.recipient == f"unit:{county.id}"


def test_bad_input_is_refused_whole(client, db):
    unit = make_unit(db)
    h = token_for(db, make_staff(db, unit, roles=("admin",)))
    mine, theirs = make_customer(db, unit), make_customer(db, unit)
    db.commit()
    contact = client.post(
        f"/api/v1/customers/{theirs.id}/contacts", headers=h, json={"name": "他人"}
    ).json()
    cases = [
        ({"customer_id": 999999}, "customer_id"),
        ({"category_code": "astrology"}, "category_code"),
        ({"contact_id": contact["id"]}, "contact_id"),
        ({"subject": "<script>alert(1)</script>"}, "subject"),
        ({"priority": "whenever"}, "priority"),
        ({"subject": ""}, "subject"),
    ]
    for change, field in cases:
        body = {"customer_id": mine.id, "category_code": "other", "subject": "正常", **change}
        r = client.post("/api/v1/tickets", headers=h, json=body)
        assert r.status_code == 422, (change, r.text)
        assert r.json()["errors"][0]["field"] == field
    assert db.scalars(select(Ticket)).all() == []
    t = open_ticket(client, h, mine.id, description='<p onclick="x()">好<script>bad()</script></p>')
    assert t["description"] == "<p>好</p>"


def test_idempotent_intake(client, db):
    unit = make_unit(db)
    h = token_for(db, make_staff(db, unit, roles=("admin",)))
    customer = make_customer(db, unit)
    db.commit()
    body = {"customer_id": customer.id, "category_code": "other", "subject": "重试"}
    a = client.post("/api/v1/tickets", headers={**h, "Idempotency-Key": "abc"}, json=body)
    b = client.post("/api/v1/tickets", headers={**h, "Idempotency-Key": "abc"}, json=body)
    assert a.json()["id"] == b.json()["id"]
    assert len(db.scalars(select(Ticket)).all()) == 1


def test_states_pauses_and_sla_facts(client, db):
    unit = make_unit(db)
    agent = make_staff(db, unit, roles=("agent",))
    h = integration_token(db, agent)  # the clock moves days ahead: no expiry
    customer = make_customer(db, unit)
    customer.account_manager_id = agent.id
    customer.service_level = "3A"
    db.commit()
    t = open_ticket(client, h, customer.id, priority="normal")  # 3A normal: 240 / 4800
    due = datetime.fromisoformat(t["resolution_due"])
    bad = client.patch(
        f"/api/v1/tickets/{t['id']}", headers=h, json={"version": t["version"], "state": "closed"}
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "state"
    # A public reply is the first response, in time.
    clock.set_now(lambda: datetime(2026, 11, 24, 11, tzinfo=SH).astimezone(UTC))
    r = client.post(f"/api/v1/tickets/{t['id']}/messages", headers=h, json={"body": "已收到"})
    assert r.status_code == 201
    t = client.get(f"/api/v1/tickets/{t['id']}", headers=h).json()
    assert t["state"] == "open" and t["first_response_at"] and not t["breached_first_response"]
    # Pending for one working day: the resolution due moves by that much.
    r = client.patch(
        f"/api/v1/tickets/{t['id']}", headers=h, json={"version": t["version"], "state": "pending"}
    )
    assert r.status_code == 200, r.text
    stale = client.patch(
        f"/api/v1/tickets/{t['id']}", headers=h, json={"version": t["version"], "priority": "low"}
    )
    assert stale.status_code == 409
    t = r.json()
    clock.set_now(lambda: datetime(2026, 11, 25, 11, tzinfo=SH).astimezone(UTC))
    t = client.patch(
        f"/api/v1/tickets/{t['id']}", headers=h, json={"version": t["version"], "state": "open"}
    ).json()
    moved = datetime.fromisoformat(t["resolution_due"])
    assert moved - due == timedelta(days=1)  # 7.5 business hours = the same time next day
    clock.set_now(lambda: datetime(2026, 11, 25, 15, tzinfo=SH).astimezone(UTC))
    t = client.patch(
        f"/api/v1/tickets/{t['id']}", headers=h, json={"version": t["version"], "state": "resolved"}
    ).json()
    assert t["resolved_at"] and not t["breached_resolution"]
    # Worked 10:00–17:30 on Tuesday and 11:00–15:00 on Wednesday, pending 11:00→11:00.
    # Open Tue 10:00 → Wed 15:00 is 360 + 300 business minutes; pending Tue 11:00 → Wed
    # 11:00 took 60 + 240 + 150 = 450 of them: 210 used.
    assert t["business_minutes_used"] == pytest.approx(210)
    clock.set_now(lambda: datetime(2026, 12, 10, 15, tzinfo=SH).astimezone(UTC))
    late = client.patch(
        f"/api/v1/tickets/{t['id']}", headers=h, json={"version": t["version"], "state": "open"}
    )
    assert late.status_code == 422
