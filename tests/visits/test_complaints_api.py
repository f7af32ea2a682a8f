from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kefu import clock
from tests.factories import make_customer, make_staff, make_unit, token_for
from tests.scope_matrix import build_org, check_scope
from tests.visits.test_visits_api import open_ticket, set_state, visit_of

SH = ZoneInfo("Asia/Shanghai")
TUESDAY_10 = datetime(2026, 11, 24, 10, tzinfo=SH)


@pytest.fixture(autouse=True)
def tuesday_morning():
    clock.set_now(lambda: TUESDAY_10.astimezone(UTC))


@pytest.fixture
def desk(db):
    unit = make_unit(db, "西湖", region_code="330106")
    people = {
        "agent": make_staff(db, unit, username="agent.one"),
        "head": make_staff(db, unit, username="head", roles=("supervisor",)),
        "manager": make_staff(db, unit, username="boss", roles=("manager",)),
    }
    customer = make_customer(db, unit)
    db.commit()
    return {"unit": unit, "customer": customer, **{k: token_for(db, v) for k, v in people.items()}}


def complaint_of(client, h, ticket_id):
    items = client.get("/api/v1/complaints", headers=h).json()["items"]
    [c] = [c for c in items if c["ticket_id"] == ticket_id]
    return c


def patch(client, h, c, **body):
    return client.patch(
        f"/api/v1/complaints/{c['id']}", headers=h, json={"version": c["version"], **body}
    )


def test_a_complaint_ticket_gets_the_workflow_and_stricter_targets(client, desk):
    h = desk["agent"]
    plain = open_ticket(client, h, desk["customer"].id, priority="high")
    t = open_ticket(client, h, desk["customer"].id, category="complaint", priority="high")
    c = complaint_of(client, h, t["id"])
    assert c["severity"] == 2 and c["compensation_state"] == "none" and c["cause_code"] is None
    # Half the general targets of the level: due sooner than the same request otherwise.
    assert t["first_response_due"] < plain["first_response_due"]
    causes = client.get("/api/v1/complaints/causes", headers=h).json()
    assert {"code": "attitude", "name": "服务态度"} in causes


def test_a_repeat_of_the_same_cause_raises_the_severity(client, desk):
    h = desk["agent"]
    first = complaint_of(
        client, h, open_ticket(client, h, desk["customer"].id, category="complaint")["id"]
    )
    assert patch(client, h, first, cause_code="billing").status_code == 200
    clock.set_now(lambda: TUESDAY_10.astimezone(UTC) + timedelta(minutes=30))
    t2 = open_ticket(client, h, desk["customer"].id, category="complaint")
    second = complaint_of(client, h, t2["id"])
    assert second["severity"] == 1
    r = patch(client, h, second, cause_code="billing")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["severity"] == 2 and body["severity_reason"] == "repeat"
    assert body["repeat_of_id"] == first["id"]
    # Another cause is no repeat.
    third = complaint_of(
        client, h, open_ticket(client, h, desk["customer"].id, category="complaint")["id"]
    )
    assert patch(client, h, third, cause_code="attitude").json()["severity"] == 1


def test_compensation_within_authority(client, desk):
    h = desk["agent"]
    c = complaint_of(
        client, h, open_ticket(client, h, desk["customer"].id, category="complaint")["id"]
    )
    r = patch(client, h, c, compensation="300.00")
    assert r.json()["compensation_state"] == "approved"
    c = r.json()
    r = patch(client, h, c, compensation="8000.50")
    c = r.json()
    assert c["compensation_state"] == "pending" and c["compensation"] == "8000.50"
    url = f"/api/v1/complaints/{c['id']}/compensation"
    r = client.post(url, headers=desk["agent"], json={"version": c["version"], "approve": True})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "compensation"
    r = client.post(url, headers=desk["head"], json={"version": c["version"], "approve": True})
    assert r.status_code == 422 and "5000" in r.json()["errors"][0]["message"]
    assert (
        client.get(f"/api/v1/complaints/{c['id']}", headers=h).json()["compensation_state"]
        == "pending"
    )
    r = client.post(url, headers=desk["manager"], json={"version": c["version"], "approve": True})
    assert r.status_code == 200 and r.json()["compensation_decided_by"] == "boss"


def test_bad_input_changes_nothing(client, desk):
    h = desk["agent"]
    c = complaint_of(
        client, h, open_ticket(client, h, desk["customer"].id, category="complaint")["id"]
    )
    for body, field in (
        ({"cause_code": "no-such-cause"}, "cause_code"),
        ({"compensation": "-1"}, "compensation"),
        ({"compensation": "1.234"}, "compensation"),
        ({"severity": 4}, "severity"),
    ):
        r = patch(client, h, c, **body)
        assert r.status_code == 422, body
        assert r.json()["errors"][0]["field"] == field, body
    assert patch(client, h, {**c, "version": c["version"] + 1}, remedy="x").status_code == 409
    assert client.get(f"/api/v1/complaints/{c['id']}", headers=h).json() == c


def test_verification_and_closing(client, desk):
    h = desk["agent"]
    t = open_ticket(client, h, desk["customer"].id, category="complaint")
    c = complaint_of(client, h, t["id"])
    url = f"/api/v1/complaints/{c['id']}/verify"
    r = client.post(url, headers=h, json={"version": c["version"], "verification": "已核实"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cause_code"
    c = patch(client, h, c, cause_code="repair_quality", remedy="重新上门更换光猫").json()
    assert set_state(client, h, t["id"], "resolved").status_code == 200
    r = set_state(client, h, t["id"], "closed")
    assert r.status_code == 422 and "核实" in r.json()["errors"][0]["message"]
    r = client.post(
        url, headers=h, json={"version": c["version"], "verification": "客户确认恢复正常"}
    )
    assert r.status_code == 200 and r.json()["verified_by"] == "agent.one"
    r = set_state(client, h, t["id"], "closed")
    assert r.status_code == 422 and "回访" in r.json()["errors"][0]["message"]
    [v] = visit_of(client, h, t["id"])
    client.post(
        f"/api/v1/return-visits/{v['id']}/outcome",
        headers=h,
        json={"version": v["version"], "reached": True, "satisfied": True},
    )
    assert set_state(client, h, t["id"], "closed").status_code == 200


def test_scope_and_register(client, db):
    org = build_org(db)
    records = {}
    for unit in org.units.values():
        customer = make_customer(db, unit)
        make_customer(db, unit)  # two customers per unit: the register's denominator
        db.commit()
        t = open_ticket(client, org.headers["admin"], customer.id, category="complaint")
        records[complaint_of(client, org.headers["admin"], t["id"])["id"]] = unit
    check_scope(
        client,
        org,
        list_url="/api/v1/complaints",
        detail_url=lambda i: f"/api/v1/complaints/{i}",
        records=records,
        write=("PATCH", {"version": 1, "remedy": "越界"}),
    )
    params = {"unit_id": org.city_a.id, "start": "2026-11-01", "end": "2026-11-30"}
    r = client.get("/api/v1/complaints/register", headers=org.headers["city_a"], params=params)
    rows = {i["key"]: i for i in r.json()["items"]}
    assert rows[org.county_x.id] == {
        "key": org.county_x.id,
        "complaints": 1,
        "customers": 2,
        "per_100_customers": 50.0,
    }
    assert rows[org.city_a.id]["complaints"] == 1
    by_month = client.get(
        "/api/v1/complaints/register",
        headers=org.headers["city_a"],
        params={**params, "by": "month"},
    ).json()["items"]
    assert by_month == [
        {"key": "2026-11-01", "complaints": 3, "customers": 6, "per_100_customers": 50.0}
    ]
    r = client.get(
        "/api/v1/complaints/register",
        headers=org.headers["county_x"],
        params={**params, "unit_id": org.province.id},
    )
    assert r.status_code == 404
