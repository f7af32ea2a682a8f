from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from kefu import clock
from kefu.config import get_settings, secret_key
from kefu.notifications.models import OutboxMessage
from kefu.surveys import policy
from kefu.surveys import service as surveys
from kefu.surveys.models import RecoveryTask, SatisfactionMonth
from kefu.visits.models import ReturnVisit
from tests.factories import make_customer, make_staff, make_unit, token_for
from tests.scope_matrix import build_org
from tests.visits.test_visits_api import resolved_ticket, visit_of

SH = ZoneInfo("Asia/Shanghai")
TUESDAY_10 = datetime(2026, 11, 24, 10, tzinfo=SH)
DIMS = ("reliability", "responsiveness", "assurance", "empathy", "tangibles")


@pytest.fixture(autouse=True)
def tuesday_morning():
    clock.set_now(lambda: TUESDAY_10.astimezone(UTC))


def scores(*values):
    return dict(zip(DIMS, values, strict=True))


def answer(e=(6, 6, 6, 6, 6), p=(6, 6, 6, 6, 6), csat=5, nps=9, comment=""):
    return {
        "expectations": scores(*e),
        "perceptions": scores(*p),
        "csat": csat,
        "nps": nps,
        "comment": comment,
    }


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
    }


def invite(client, h, ticket_id):
    r = client.post("/api/v1/surveys/invitations", headers=h, json={"ticket_id": ticket_id})
    assert r.status_code == 201, r.text
    return r.json()


def test_link_answers_once_in_the_contacts_language(client, db, desk):
    h = desk["h"]
    t = resolved_ticket(client, h, desk["customer"].id)
    inv = invite(client, h, t["id"])
    assert inv["url"].endswith(f"/s/{inv['token']}") and inv["locale"] == "zh_CN"
    r = client.get(f"/api/v1/surveys/{inv['token']}")  # no sign-in
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ticket_number"] == t["number"] and body["dimensions"] == list(DIMS)
    assert "可靠性" in body["texts"]["reliability"]
    r = client.post(f"/api/v1/surveys/{inv['token']}", json=answer(p=(5, 6, 6, 6, 7)))
    assert r.status_code == 201, r.text
    again = client.post(f"/api/v1/surveys/{inv['token']}", json=answer())
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert client.get(f"/api/v1/surveys/{inv['token']}").status_code == 409
    [a] = client.get("/api/v1/surveys/answers", headers=h, params={"ticket_id": t["id"]}).json()[
        "items"
    ]
    assert a["expected_total"] == 30 and a["perceived_total"] == 30 and a["index"] == 100.0
    assert a["channel"] == "link" and a["agent_id"] == t["assignee_id"]
    events = client.get(f"/api/v1/tickets/{t['id']}/events", headers=h).json()["items"]
    assert any(e["kind"] == "survey" for e in events)


def test_bad_links_and_answers_change_nothing(client, db, desk):
    h = desk["h"]
    t = resolved_ticket(client, h, desk["customer"].id)
    inv = invite(client, h, t["id"])
    token = inv["token"]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get(f"/api/v1/surveys/{tampered}").status_code == 404
    assert client.get("/api/v1/surveys/not-a-token").status_code == 404
    # Out of range, a missing dimension, text over the limit: 422 naming the field.
    bad = answer()
    bad["perceptions"]["empathy"] = 8
    r = client.post(f"/api/v1/surveys/{token}", json=bad, headers={"Accept-Language": "en"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "perceptions.empathy"
    bad = answer()
    del bad["expectations"]["tangibles"]
    r = client.post(f"/api/v1/surveys/{token}", json=bad)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "expectations.tangibles"
    r = client.post(f"/api/v1/surveys/{token}", json=answer(nps=11))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "nps"
    r = client.post(f"/api/v1/surveys/{token}", json=answer(comment="长" * 2001))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "comment"
    assert db.scalar(select(SatisfactionMonth.id)) is None
    # Expired: refused, and the invitation stays unanswered.
    clock.set_now(lambda: TUESDAY_10.astimezone(UTC) + timedelta(days=15))
    r = client.post(f"/api/v1/surveys/{token}", json=answer())
    assert r.status_code == 410
    # A token for another invitation cannot be made without the key.
    forged = policy.sign("not-the-key", inv["id"], datetime.fromisoformat(inv["expires_at"]))
    assert client.get(f"/api/v1/surveys/{forged}").status_code == 404
    real = policy.sign(
        secret_key(get_settings()), inv["id"], datetime.fromisoformat(inv["expires_at"])
    )
    assert real == token


def test_guessing_links_is_rate_limited(client, db, desk, monkeypatch):
    monkeypatch.setattr(get_settings(), "login_rate_per_ip", 3)
    codes = [client.get(f"/api/v1/surveys/guess{i}").status_code for i in range(5)]
    assert codes == [404, 404, 404, 429, 429]


def test_invitations_need_a_resolved_ticket_in_scope(client, db):
    org = build_org(db)
    customer = make_customer(db, org.county_y)
    db.commit()
    t = resolved_ticket(client, org.headers["admin"], customer.id)
    r = client.post(
        "/api/v1/surveys/invitations", headers=org.headers["county_x"], json={"ticket_id": t["id"]}
    )
    assert r.status_code == 404
    r = client.post(
        "/api/v1/surveys/invitations", headers=org.headers["city_a"], json={"ticket_id": t["id"]}
    )
    assert r.status_code == 201
    from tests.visits.test_visits_api import open_ticket

    fresh = open_ticket(client, org.headers["admin"], customer.id)
    r = client.post(
        "/api/v1/surveys/invitations", headers=org.headers["admin"], json={"ticket_id": fresh["id"]}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "ticket_id"


def test_low_result_opens_recovery_and_the_customer_is_asked_again(client, db, desk):
    h = desk["h"]
    t = resolved_ticket(client, h, desk["customer"].id)
    inv = invite(client, h, t["id"])
    r = client.post(
        f"/api/v1/surveys/{inv['token']}", json=answer(p=(4, 4, 5, 5, 5), csat=2, nps=3)
    )
    assert r.status_code == 201
    task = db.scalars(select(RecoveryTask)).one()
    assert task.reasons == ["index", "csat", "nps"]
    assert task.assignee_id == desk["head"].id
    assert (
        db.scalar(select(OutboxMessage.recipient).where(OutboxMessage.topic == "recovery.opened"))
        == f"staff:{desk['head'].id}"
    )
    head_h = token_for(db, desk["head"])
    listed = client.get("/api/v1/recovery-tasks", headers=head_h).json()["items"]
    assert [x["id"] for x in listed] == [task.id]
    r = client.post(
        f"/api/v1/recovery-tasks/{task.id}/done",
        headers=head_h,
        json={"version": task.version, "outcome": "上门致歉并更换设备"},
    )
    assert r.status_code == 200, r.text
    follow = db.get(ReturnVisit, r.json()["followup_visit_id"])
    assert follow.kind == "recovery" and follow.state == "scheduled"
    r = client.post(
        f"/api/v1/recovery-tasks/{task.id}/done",
        headers=head_h,
        json={"version": r.json()["version"], "outcome": "again"},
    )
    assert r.status_code == 422


def test_phone_answers_finish_the_visit_once(client, db, desk):
    h = desk["h"]
    t = resolved_ticket(client, h, desk["customer"].id)
    [v] = visit_of(client, h, t["id"])
    url = f"/api/v1/return-visits/{v['id']}/survey-answer"
    r = client.post(url, headers=h, json=answer())
    assert r.status_code == 201, r.text
    assert r.json()["channel"] == "phone"
    assert client.get(f"/api/v1/return-visits/{v['id']}", headers=h).json()["state"] == "done"
    assert client.post(url, headers=h, json=answer()).status_code == 422


def test_report_is_a_ratio_of_sums_per_subtree_and_month(client, db):
    org = build_org(db)
    h = org.headers["admin"]
    given = [
        (org.county_x, (7, 7, 7, 7, 7), (7, 7, 7, 7, 7), 5, 10),  # index 100
        (org.county_x, (2, 2, 2, 2, 2), (4, 4, 4, 4, 4), 4, 8),  # index 200
        (org.county_z, (6, 6, 6, 6, 6), (3, 3, 3, 3, 3), 2, 0),  # index 50
    ]
    for unit, e, p, csat, nps in given:
        customer = make_customer(db, unit)
        db.commit()
        t = resolved_ticket(client, h, customer.id)
        inv = invite(client, h, t["id"])
        assert (
            client.post(f"/api/v1/surveys/{inv['token']}", json=answer(e, p, csat, nps)).status_code
            == 201
        )
    params = {"unit_id": org.province.id, "start": "2026-01-01", "end": "2026-12-31"}
    r = client.get("/api/v1/reports/satisfaction", headers=h, params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    # Σ perceived ÷ Σ expected: (35 + 20 + 15) ÷ (35 + 10 + 30) = 93.3, not the mean 116.7.
    assert body["total"]["index"] == 93.3 and body["total"]["answers"] == 3
    assert body["total"]["csat"] == 66.7 and body["total"]["nps"] == 0.0
    items = {i["key"]: i for i in body["items"]}
    assert set(items) == {org.city_a.id, org.city_b.id}
    assert items[org.city_a.id]["index"] == round(55 * 100 / 45, 1)
    assert items[org.city_b.id]["index"] == 50.0
    worst = items[org.city_b.id]["dimensions"][0]
    assert worst["gap"] == -3.0
    # City A's manager sees its subtree and not the province.
    r = client.get("/api/v1/reports/satisfaction", headers=org.headers["city_a"], params=params)
    assert r.status_code == 404
    params_a = {**params, "unit_id": org.city_a.id, "by": "month"}
    r = client.get("/api/v1/reports/satisfaction", headers=org.headers["city_a"], params=params_a)
    assert [i["key"] for i in r.json()["items"]] == ["2026-11-01"]
    assert r.json()["total"]["answers"] == 2
    # The monthly sums are exactly what a rebuild from the answers gives.
    before = sorted(
        (m.unit_id, m.month, m.answers, m.expected, m.perceived, m.promoters, m.detractors)
        for m in db.scalars(select(SatisfactionMonth))
    )
    surveys.rebuild_months(db)
    after = sorted(
        (m.unit_id, m.month, m.answers, m.expected, m.perceived, m.promoters, m.detractors)
        for m in db.scalars(select(SatisfactionMonth).execution_options(populate_existing=True))
    )
    assert before == after and before[0][1] == date(2026, 11, 1)
    by_agent = client.get(
        "/api/v1/reports/satisfaction", headers=h, params={**params, "by": "agent"}
    ).json()
    assert sum(i["answers"] for i in by_agent["items"]) <= 3
    by_customer = client.get(
        "/api/v1/reports/satisfaction", headers=h, params={**params, "by": "customer"}
    ).json()
    assert sorted(i["index"] for i in by_customer["items"]) == [50.0, 100.0, 200.0]


def test_scope_of_answers_and_recovery(client, db):
    org = build_org(db)
    h = org.headers["admin"]
    answers = {}
    for key in ("county_x", "county_y", "county_z"):
        unit = getattr(org, key)
        customer = make_customer(db, unit)
        db.commit()
        t = resolved_ticket(client, h, customer.id)
        inv = invite(client, h, t["id"])
        client.post(f"/api/v1/surveys/{inv['token']}", json=answer(p=(1, 1, 1, 1, 1), csat=1))
        a = client.get("/api/v1/surveys/answers", headers=h, params={"ticket_id": t["id"]}).json()
        answers[a["items"][0]["id"]] = unit
    from tests.scope_matrix import check_scope

    check_scope(
        client,
        org,
        list_url="/api/v1/surveys/answers",
        detail_url=lambda i: f"/api/v1/surveys/answers/{i}",
        records=answers,
    )
    tasks = {
        t.id: db.get(type(org.province), t.owning_unit_id) for t in db.scalars(select(RecoveryTask))
    }
    check_scope(
        client,
        org,
        list_url="/api/v1/recovery-tasks",
        detail_url=lambda i: f"/api/v1/recovery-tasks/{i}",
        records=tasks,
        write=None,
    )


def test_templates_api_is_for_administrators_and_names_bad_fields(client, db):
    org = build_org(db)
    [t] = client.get("/api/v1/surveys/templates", headers=org.headers["county_x"]).json()
    body = {"empathy": {"zh_CN": "您的需要被理解了吗？", "en": "Were your needs understood?"}}
    url = f"/api/v1/surveys/templates/{t['id']}"
    assert client.patch(url, headers=org.headers["province"], json=body).status_code == 404
    bad = {"empathy": {"zh_CN": "只有中文", "en": ""}}
    r = client.patch(url, headers=org.headers["admin"], json=bad)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "empathy.en"
    r = client.patch(url, headers=org.headers["admin"], json=body)
    assert r.status_code == 200
    assert r.json()["texts"]["empathy"] == body["empathy"]
    assert r.json()["texts"]["reliability"] == t["texts"]["reliability"]  # the rest stays


def test_phone_answers_stay_in_scope(client, db):
    org = build_org(db)
    customer = make_customer(db, org.county_y)
    db.commit()
    t = resolved_ticket(client, org.headers["admin"], customer.id)
    [v] = visit_of(client, org.headers["admin"], t["id"])
    url = f"/api/v1/return-visits/{v['id']}/survey-answer"
    assert client.post(url, headers=org.headers["county_x"], json=answer()).status_code == 404
    assert client.post(url, headers=org.headers["city_a"], json=answer()).status_code == 201
