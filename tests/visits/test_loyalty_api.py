from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from kefu import clock
from kefu.customers.models import RevenueRecord
from tests.factories import make_customer
from tests.scope_matrix import build_org
from tests.visits.test_visits_api import open_ticket, set_state

SH = ZoneInfo("Asia/Shanghai")
TUESDAY_10 = datetime(2026, 11, 24, 10, tzinfo=SH)


@pytest.fixture(autouse=True)
def tuesday_morning():
    clock.set_now(lambda: TUESDAY_10.astimezone(UTC))


def revenue(db, customer, *entries):
    for day, amount in entries:
        db.add(RevenueRecord(customer_id=customer.id, date=day, amount=Decimal(amount)))
    db.flush()


def test_retention_per_sub_unit_and_tier(client, db):
    org = build_org(db)
    kept = make_customer(db, org.county_x)
    lost = make_customer(db, org.county_x)
    new = make_customer(db, org.county_y)
    other = make_customer(db, org.county_z)
    revenue(db, kept, (date(2025, 3, 1), "100"), (date(2026, 3, 1), "100"))
    revenue(db, lost, (date(2025, 5, 1), "100"))
    revenue(db, new, (date(2026, 5, 1), "100"))
    revenue(db, other, (date(2025, 6, 1), "50"), (date(2026, 1, 2), "10"))
    kept.tier, lost.tier, other.tier = "A", "B", "A"
    db.commit()
    params = {"unit_id": org.province.id, "year": 2026}
    body = client.get(
        "/api/v1/reports/loyalty", headers=org.headers["province"], params=params
    ).json()
    r = body["retention"]
    assert r["total"] == {"key": "total", "base": 3, "hits": 2, "rate": 66.7}
    by_unit = {x["key"]: x for x in r["by_unit"]}
    assert by_unit[org.city_a.id]["rate"] == 50.0 and by_unit[org.city_b.id]["rate"] == 100.0
    by_tier = {x["key"]: x["rate"] for x in r["by_tier"]}
    assert by_tier == {"A": 100.0, "B": 0.0}
    # A county sees its own subtree only.
    h = org.headers["county_x"]
    assert client.get("/api/v1/reports/loyalty", headers=h, params=params).status_code == 404
    mine = client.get(
        "/api/v1/reports/loyalty", headers=h, params={"unit_id": org.county_x.id, "year": 2026}
    ).json()
    assert mine["retention"]["total"]["base"] == 2


def test_repeat_contacts(client, db):
    org = build_org(db)
    h = org.headers["admin"]
    c = make_customer(db, org.county_x)
    db.commit()
    reopened = open_ticket(client, h, c.id)
    assert set_state(client, h, reopened["id"], "resolved").status_code == 200
    quiet = open_ticket(client, h, c.id, category="installation")
    assert set_state(client, h, quiet["id"], "resolved").status_code == 200
    clock.set_now(lambda: TUESDAY_10.astimezone(UTC) + timedelta(minutes=20))
    assert set_state(client, h, reopened["id"], "open").status_code == 200
    raised = open_ticket(client, h, c.id, category="fault_repair")
    assert set_state(client, h, raised["id"], "resolved").status_code == 200
    clock.set_now(lambda: TUESDAY_10.astimezone(UTC) + timedelta(minutes=40))
    again = open_ticket(client, h, c.id, category="fault_repair")  # the same need, raised again
    assert again["id"]
    body = client.get(
        "/api/v1/reports/loyalty", headers=h, params={"unit_id": org.province.id, "year": 2026}
    ).json()
    # Resolutions: reopened (came back), installation (did not), fault repair (raised again).
    assert body["repeat_contacts"]["total"] == {"key": "total", "base": 3, "hits": 2, "rate": 66.7}
    # The customer has no tier yet: one group, '' (the page shows "—").
    assert body["repeat_contacts"]["by_tier"] == [{"key": "", "base": 3, "hits": 2, "rate": 66.7}]


def test_churn_risk_lists_each_customer_with_its_reasons(client, db):
    org = build_org(db)
    h = org.headers["admin"]
    falling = make_customer(db, org.county_x, "下滑客户")
    steady = make_customer(db, org.county_x, "稳定客户")
    unhappy = make_customer(db, org.county_z, "投诉客户")
    revenue(db, falling, (date(2025, 6, 1), "1000"), (date(2026, 6, 1), "400"))
    revenue(db, steady, (date(2025, 6, 1), "1000"), (date(2026, 6, 1), "900"))
    revenue(db, unhappy, (date(2025, 6, 1), "1000"), (date(2026, 6, 1), "300"))
    db.commit()
    open_ticket(client, h, unhappy.id, category="complaint")
    t = open_ticket(client, h, unhappy.id)
    set_state(client, h, t["id"], "resolved")
    inv = client.post("/api/v1/surveys/invitations", headers=h, json={"ticket_id": t["id"]}).json()
    low = {d: 2 for d in ("reliability", "responsiveness", "assurance", "empathy", "tangibles")}
    high = {d: 6 for d in low}
    assert (
        client.post(
            f"/api/v1/surveys/{inv['token']}", json={"expectations": high, "perceptions": low}
        ).status_code
        == 201
    )
    # The worker's daily rebuild of the revenue trend, as of yesterday.
    from kefu.loyalty import service as loyalty

    assert loyalty.refresh_if_stale(db) == 3
    assert loyalty.refresh_if_stale(db) is None  # once a day
    db.commit()
    r = client.get("/api/v1/reports/churn-risk", headers=h, params={"unit_id": org.province.id})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 2
    first, second = body["items"]
    assert first["name"] == "投诉客户"
    assert first["reasons"] == ["revenue_down", "complaint", "low_satisfaction"]
    assert first["revenue_change_percent"] == -70.0 and first["satisfaction_index"] == 33.3
    assert second["name"] == "下滑客户" and second["reasons"] == ["revenue_down"]
    # The county sees only its own customers' risks.
    mine = client.get(
        "/api/v1/reports/churn-risk",
        headers=org.headers["county_x"],
        params={"unit_id": org.county_x.id},
    ).json()
    assert [i["name"] for i in mine["items"]] == ["下滑客户"]
    assert (
        client.get(
            "/api/v1/reports/churn-risk",
            headers=org.headers["county_x"],
            params={"unit_id": org.province.id},
        ).status_code
        == 404
    )
