"""/api/v1/routing-rules: ordered rules, admins only, bad input, and the preview that
takes the intake's own path and writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from kefu import clock
from kefu.audit.models import AuditEntry
from kefu.tickets.models import Ticket, TicketEvent
from tests.factories import make_customer, make_staff, make_unit, token_for
from tests.scope_matrix import build_org

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def tuesday_morning():
    clock.set_now(lambda: datetime(2026, 11, 24, 10, tzinfo=SH).astimezone(UTC))


def fields(r) -> set[str]:
    assert r.status_code == 422, r.text
    return {e["field"] for e in r.json()["errors"]}


@pytest.fixture
def tree(db):
    province = make_unit(db, "省", region_code="330000", functions=["technical", "service"])
    city = make_unit(db, "市", province, region_code="330100")
    county = make_unit(db, "县", city, region_code="330106")
    far = make_unit(db, "异地县", city, region_code="330110")
    admin = make_staff(db, province, roles=("admin",), username="rules.admin")
    expert = make_staff(db, province, roles=("agent",), username="expert", display_name="专家")
    local = make_staff(db, far, roles=("agent",), username="local", display_name="本地")
    customer = make_customer(db, county)
    db.commit()
    return {
        "province": province,
        "county": county,
        "far": far,
        "h": token_for(db, admin),
        "expert": expert,
        "local": local,
        "customer": customer,
    }


def add(client, h, **body):
    r = client.post("/api/v1/routing-rules", headers=h, json=body)
    assert r.status_code == 201, r.text
    assert r.headers["Location"].endswith(f"/routing-rules/{r.json()['id']}")
    return r.json()


def preview(client, h, customer_id, category, site=None):
    params = {"customer_id": customer_id, "category_code": category}
    if site:
        params["site_region_code"] = site
    r = client.get("/api/v1/routing-rules/preview", headers=h, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_rules_in_order_and_preview_matches_intake(client, db, tree):
    h, customer = tree["h"], tree["customer"]
    onsite = add(client, h, kind="site_region", note="上门服务就近")
    repair = add(
        client, h, kind="category_function", category_code="fault_repair", function="technical"
    )
    assert [r["id"] for r in client.get("/api/v1/routing-rules", headers=h).json()] == [
        onsite["id"],
        repair["id"],
    ]
    # The site-region rule comes first: an on-site repair goes to the far county.
    p = preview(client, h, customer.id, "fault_repair", "330110")
    assert p["handling_unit_id"] == tree["far"].id and p["linked"] is True
    assert p["rule_id"] == onsite["id"] and p["assignee_id"] == tree["local"].id
    outcomes = [(s["rule_id"], s["outcome"]) for s in p["trace"]]
    assert (onsite["id"], "applied") in outcomes and (repair["id"], "not_reached") in outcomes
    before = (
        db.scalar(select(func.count()).select_from(Ticket)),
        db.scalar(select(func.count()).select_from(AuditEntry)),
    )
    body = {
        "customer_id": customer.id,
        "category_code": "fault_repair",
        "subject": "光缆故障",
        "site_region_code": "330110",
    }
    t = client.post("/api/v1/tickets", headers=h, json=body).json()
    assert (t["handling_unit_id"], t["assignee_id"]) == (p["handling_unit_id"], p["assignee_id"])
    route = db.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == t["id"], TicketEvent.kind == "route")
    ).one()
    assert route.data["rule_id"] == onsite["id"]
    # The preview wrote nothing: one ticket more and its audit row, from the intake alone.
    assert db.scalar(select(func.count()).select_from(Ticket)) == before[0] + 1
    # Moving the function rule first (position 0, before the other) changes the decision.
    r = client.patch(f"/api/v1/routing-rules/{repair['id']}", headers=h, json={"position": 0})
    client.patch(f"/api/v1/routing-rules/{onsite['id']}", headers=h, json={"position": 1})
    assert r.status_code == 200
    p = preview(client, h, customer.id, "fault_repair", "330110")
    assert p["handling_unit_id"] == tree["province"].id and p["rule_id"] == repair["id"]
    assert p["assignee_id"] == tree["expert"].id and p["assign_rule"] == "least_loaded"
    # Disabled: passed over, and the trace says so.
    client.patch(f"/api/v1/routing-rules/{repair['id']}", headers=h, json={"is_active": False})
    p = preview(client, h, customer.id, "fault_repair", "330110")
    assert p["rule_id"] == onsite["id"]
    assert (repair["id"], "disabled") in [(s["rule_id"], s["outcome"]) for s in p["trace"]]
    # No rule decides: the owning unit, nobody there to take it.
    p = preview(client, h, customer.id, "consultation")
    assert p["rule"] == "owning_unit" and p["handling_unit_id"] == tree["county"].id
    assert p["assignee_id"] is None and p["assign_rule"] == "unassigned"
    assert client.delete(f"/api/v1/routing-rules/{repair['id']}", headers=h).status_code == 204
    assert client.get(f"/api/v1/routing-rules/{repair['id']}", headers=h).status_code == 404
    actions = set(
        db.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "routing_rule"))
    )
    assert actions == {"routing_rule.create", "routing_rule.update", "routing_rule.delete"}


def test_bad_rules_are_refused(client, db, tree):
    h = tree["h"]
    url = "/api/v1/routing-rules"
    assert "function" in fields(
        client.post(url, headers=h, json={"kind": "category_function", "category_code": "other"})
    )
    assert "category_code" in fields(
        client.post(url, headers=h, json={"kind": "category_function", "function": "service"})
    )
    assert "category_code" in fields(
        client.post(
            url,
            headers=h,
            json={"kind": "category_function", "category_code": "nope", "function": "service"},
        )
    )
    assert "function" in fields(
        client.post(
            url,
            headers=h,
            json={"kind": "category_function", "category_code": "other", "function": "cooking"},
        )
    )
    assert "function" in fields(
        client.post(url, headers=h, json={"kind": "site_region", "function": "service"})
    )
    assert "category_code" in fields(
        client.post(url, headers=h, json={"kind": "site_region", "category_code": "consultation"})
    )
    assert "kind" in fields(client.post(url, headers=h, json={"kind": "weather"}))
    rule = add(client, h, kind="site_region", category_code="installation")
    r = client.patch(f"{url}/{rule['id']}", headers=h, json={"category_code": "complaint"})
    assert "category_code" in fields(r)
    assert client.get(f"{url}/{rule['id']}", headers=h).json()["category_code"] == "installation"
    r = client.get(
        f"{url}/preview",
        headers=h,
        params={"customer_id": tree["customer"].id, "category_code": "nope"},
    )
    assert "category_code" in fields(r)
    r = client.get(
        f"{url}/preview", headers=h, params={"customer_id": 999999, "category_code": "other"}
    )
    assert "customer_id" in fields(r)
    assert client.patch(f"{url}/999999", headers=h, json={"note": "x"}).status_code == 404


def test_only_admins_change_rules_and_previews_are_scoped(client, db):
    org = build_org(db)
    admin, city_a, county_x = org.headers["admin"], org.headers["city_a"], org.headers["county_x"]
    rule = add(client, admin, kind="site_region")
    url = "/api/v1/routing-rules"
    for h in (city_a, county_x):
        assert client.get(url, headers=h).status_code == 200  # everyone may read the rules
        assert client.post(url, headers=h, json={"kind": "site_region"}).status_code == 403
        assert (
            client.patch(f"{url}/{rule['id']}", headers=h, json={"is_active": False}).status_code
            == 403
        )
        assert client.delete(f"{url}/{rule['id']}", headers=h).status_code == 403
    in_z = make_customer(db, org.county_z)
    in_x = make_customer(db, org.county_x)
    db.commit()
    # A preview names units and people: only for customers the caller sees.
    r = client.get(
        f"{url}/preview",
        headers=county_x,
        params={"customer_id": in_z.id, "category_code": "other"},
    )
    assert "customer_id" in fields(r)
    ok = client.get(
        f"{url}/preview",
        headers=county_x,
        params={"customer_id": in_x.id, "category_code": "other"},
    )
    assert ok.status_code == 200 and ok.json()["handling_unit_id"] == org.county_x.id
    ok = client.get(
        f"{url}/preview", headers=city_a, params={"customer_id": in_x.id, "category_code": "other"}
    )
    assert ok.status_code == 200
