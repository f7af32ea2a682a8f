from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from kefu import clock
from kefu.notifications.models import OutboxMessage
from kefu.visits import service as visits
from kefu.visits.models import ReturnVisit
from tests.factories import make_customer, make_staff, make_unit, token_for
from tests.scope_matrix import build_org, check_scope

SH = ZoneInfo("Asia/Shanghai")
TUESDAY_10 = datetime(2026, 11, 24, 10, tzinfo=SH)


@pytest.fixture(autouse=True)
def tuesday_morning():
    clock.set_now(lambda: TUESDAY_10.astimezone(UTC))


def at(dt: datetime) -> None:
    clock.set_now(lambda: dt.astimezone(UTC))


def open_ticket(client, h, customer_id, category="technical_support", **kw):
    body = {"customer_id": customer_id, "category_code": category, "subject": "专线中断", **kw}
    r = client.post("/api/v1/tickets", headers=h, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def set_state(client, h, ticket_id, state, **kw):
    t = client.get(f"/api/v1/tickets/{ticket_id}", headers=h).json()
    r = client.patch(
        f"/api/v1/tickets/{ticket_id}", headers=h, json={"version": t["version"], "state": state}
    )
    return r


def resolved_ticket(client, h, customer_id, **kw):
    t = open_ticket(client, h, customer_id, **kw)
    assert set_state(client, h, t["id"], "resolved").status_code == 200
    return t


def visit_of(client, h, ticket_id, state="scheduled"):
    r = client.get(
        "/api/v1/return-visits", headers=h, params={"ticket_id": ticket_id, "state": state}
    )
    assert r.status_code == 200, r.text
    return r.json()["items"]


@pytest.fixture
def desk(db):
    county = make_unit(db, "西湖", region_code="330106")
    head = make_staff(db, county, username="head", roles=("supervisor",))
    agent = make_staff(db, county, username="agent.one")
    customer = make_customer(db, county)
    db.commit()
    return {
        "unit": county,
        "head": head,
        "agent": agent,
        "customer": customer,
        "h": token_for(db, agent),
        "head_h": token_for(db, head),
    }


def test_resolving_schedules_a_visit_by_the_level_deadline_in_business_time(client, desk):
    h = desk["h"]
    t = resolved_ticket(client, h, desk["customer"].id)
    [v] = visit_of(client, h, t["id"])
    assert v["kind"] == "ticket" and v["state"] == "scheduled" and v["method"] == "phone"
    due = datetime.fromisoformat(v["due_at"]).astimezone(SH)
    # 1A: 168 h of return-visit deadline counted on the working calendar (9–18 weekdays),
    # so it lies well beyond a week of calendar time and inside working hours.
    assert due > TUESDAY_10 + timedelta(days=7)
    assert due.weekday() < 5 and 9 <= due.hour <= 18
    events = client.get(f"/api/v1/tickets/{t['id']}/events", headers=h).json()["items"]
    assert any(e["kind"] == "visit" for e in events)


def test_reopening_cancels_and_resolving_again_schedules_anew(client, desk):
    h = desk["h"]
    t = resolved_ticket(client, h, desk["customer"].id)
    assert set_state(client, h, t["id"], "open").status_code == 200
    assert visit_of(client, h, t["id"]) == []
    assert len(visit_of(client, h, t["id"], state="cancelled")) == 1
    # Resolved again at the same instant: a visit of its own all the same.
    assert set_state(client, h, t["id"], "resolved").status_code == 200
    assert len(visit_of(client, h, t["id"])) == 1


def test_outcome_unreached_retries_then_fails_and_tells_the_head(client, db, desk):
    h = desk["h"]
    t = resolved_ticket(client, h, desk["customer"].id)
    [v] = visit_of(client, h, t["id"])
    url = f"/api/v1/return-visits/{v['id']}/outcome"
    version = v["version"]
    for attempt in (1, 2, 3):
        r = client.post(url, headers=h, json={"version": version, "reached": False})
        assert r.status_code == 200, r.text
        body = r.json()
        version = body["version"]
        assert body["attempts"] == attempt
    assert body["state"] == "failed" and body["reached"] is False
    assert body["next_attempt_at"] is None
    rows = db.scalars(select(OutboxMessage).where(OutboxMessage.topic == "visit.attention")).all()
    assert [r.recipient for r in rows] == [f"unit_head:{desk['unit'].id}"]
    r = client.post(url, headers=h, json={"version": version, "reached": True, "satisfied": True})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "state"


def test_outcome_reached_records_words_and_refuses_bad_input(client, desk):
    h = desk["h"]
    t = resolved_ticket(client, h, desk["customer"].id)
    [v] = visit_of(client, h, t["id"])
    url = f"/api/v1/return-visits/{v['id']}/outcome"
    r = client.post(url, headers=h, json={"version": v["version"], "reached": True})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "satisfied"
    r = client.post(url, headers=h, json={"version": v["version"] + 5, "reached": False})
    assert r.status_code == 409
    r = client.post(
        url,
        headers={**h, "Accept-Language": "zh-CN"},
        json={
            "version": v["version"],
            "reached": True,
            "satisfied": True,
            "customer_words": "x" * 2001,
        },
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "customer_words"
    r = client.post(
        url,
        headers=h,
        json={
            "version": v["version"],
            "reached": True,
            "satisfied": True,
            "customer_words": "  工程师很专业，问题已解决。 ",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "done" and body["customer_words"] == "工程师很专业，问题已解决。"
    assert body["completed_by"] == "agent.one"
    # Unchanged while the visit was refused: one attempt, the successful one.
    assert body["attempts"] == 0


def test_a_complaint_closes_only_after_a_successful_visit(client, desk):
    h = desk["h"]
    t = resolved_ticket(client, h, desk["customer"].id, category="complaint")
    [c] = client.get("/api/v1/complaints", headers=h).json()["items"]
    c = client.patch(
        f"/api/v1/complaints/{c['id']}",
        headers=h,
        json={"version": c["version"], "cause_code": "attitude", "remedy": "道歉"},
    ).json()
    r = client.post(
        f"/api/v1/complaints/{c['id']}/verify",
        headers=h,
        json={"version": c["version"], "verification": "客户接受"},
    )
    assert r.status_code == 200
    r = set_state(client, h, t["id"], "closed")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "state"
    [v] = visit_of(client, h, t["id"])
    r = client.post(
        f"/api/v1/return-visits/{v['id']}/outcome",
        headers=h,
        json={"version": v["version"], "reached": True, "satisfied": True},
    )
    assert r.status_code == 200
    assert set_state(client, h, t["id"], "closed").status_code == 200
    # An ordinary ticket closes without a visit.
    other = resolved_ticket(client, h, desk["customer"].id)
    assert set_state(client, h, other["id"], "closed").status_code == 200


def test_scope_matrix_return_visits(client, db):
    org = build_org(db)
    records = {}
    for unit in org.units.values():
        customer = make_customer(db, unit)
        db.commit()
        t = resolved_ticket(client, org.headers["admin"], customer.id)
        [v] = visit_of(client, org.headers["admin"], t["id"])
        records[v["id"]] = unit
    check_scope(
        client,
        org,
        list_url="/api/v1/return-visits",
        detail_url=lambda i: f"/api/v1/return-visits/{i}",
        records=records,
    )
    other = next(i for i, u in records.items() if u.id == org.county_y.id)
    r = client.post(
        f"/api/v1/return-visits/{other}/outcome",
        headers=org.headers["county_x"],
        json={"version": 1, "reached": False},
    )
    assert r.status_code == 404


def test_periodic_visits_for_key_accounts_once(db):
    unit = make_unit(db, "杭州", region_code="330100")
    manager = make_staff(db, unit, username="am")
    key = make_customer(db, unit, account_manager_id=manager.id)
    plain = make_customer(db, unit)
    key.service_level, plain.service_level = "5A", "1A"
    db.flush()
    now = TUESDAY_10.astimezone(UTC)
    assert visits.schedule_periodic(db, now) == 1
    assert visits.schedule_periodic(db, now) == 0  # one is scheduled already
    [v] = db.scalars(select(ReturnVisit).where(ReturnVisit.kind == "periodic")).all()
    assert v.customer_id == key.id and v.assignee_id == manager.id and v.method == "onsite"
    assert now < v.due_at <= now + timedelta(days=29)
    # Done: the next one comes 30 days (5A) after the last due date.
    v.state = "done"
    db.flush()
    assert visits.schedule_periodic(db, now) == 1
    nxt = db.scalars(
        select(ReturnVisit).where(ReturnVisit.kind == "periodic", ReturnVisit.state == "scheduled")
    ).one()
    assert nxt.due_at == max(v.due_at + timedelta(days=30), now + timedelta(days=1))


def test_overdue_visits_escalate_once_per_step(client, db, desk):
    h = desk["h"]
    t = resolved_ticket(client, h, desk["customer"].id)
    [v] = visit_of(client, h, t["id"])
    due = datetime.fromisoformat(v["due_at"])
    assert visits.sweep_overdue(db, due - timedelta(minutes=1)) == {"breach": 0, "parent": 0}
    assert visits.sweep_overdue(db, due + timedelta(minutes=1))["breach"] == 1
    assert visits.sweep_overdue(db, due + timedelta(minutes=2))["breach"] == 0
    later = due + timedelta(hours=3)
    assert visits.sweep_overdue(db, later, parent_after=timedelta(hours=2))["parent"] == 1
    assert visits.sweep_overdue(db, later, parent_after=timedelta(hours=2))["parent"] == 0
    rows = db.scalars(
        select(OutboxMessage.recipient).where(OutboxMessage.topic == "visit.overdue")
    ).all()
    # The county has no parent in this test: only the head is told.
    assert rows == [f"unit_head:{desk['unit'].id}"]
    at(due + timedelta(minutes=5))
    h = token_for(db, desk["agent"])
    r = client.get("/api/v1/return-visits", headers=h, params={"overdue": True})
    assert [i["id"] for i in r.json()["items"]] == [v["id"]]
    assert r.json()["items"][0]["escalation"] == 2  # head, then the parent step
