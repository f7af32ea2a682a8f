"""Standard phrases (/api/v1/phrases): placeholders, who writes what, scope, filling in."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from kefu import clock
from kefu.audit.models import AuditEntry
from kefu.customers import service as customer_service
from kefu.customers.schemas import ContactCreate
from kefu.knowledge import policy
from kefu.scope import SYSTEM
from kefu.tickets import service as tickets
from kefu.tickets.schemas import TicketCreate
from tests.factories import make_customer, make_staff, token_for
from tests.scope_matrix import build_org, list_all

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def tuesday_morning():
    clock.set_now(lambda: datetime(2026, 11, 24, 10, tzinfo=SH).astimezone(UTC))


def write(client, h, status=201, **body):
    r = client.post("/api/v1/phrases", headers=h, json={"title": "问候", "body": "您好", **body})
    assert r.status_code == status, r.text
    return r.json()


@pytest.mark.parametrize(
    ("body", "found", "filled"),
    [
        ("您好，{contact}！", ["contact"], "您好，李四！"),
        ("{{literal}} {agent}", ["agent"], "{literal} 王五"),
        ("单号 {ticket_number}，{customer}", ["ticket_number", "customer"], "单号 T1，甲公司"),
        ("no placeholders { here", [], "no placeholders { here"),
    ],
)
def test_placeholders_found_and_filled(body, found, filled):
    values = {"contact": "李四", "agent": "王五", "ticket_number": "T1", "customer": "甲公司"}
    assert policy.placeholders(body) == found
    assert policy.fill(body, values) == filled


def test_unknown_placeholders_are_refused_at_save_time(client, db):
    org = build_org(db)
    bad = write(client, org.headers["county_x"], 422, body="您好 {客户名} 与 {foo}")
    err = bad["errors"][0]
    assert err["field"] == "body" and "{客户名}" in err["message"] and "{foo}" in err["message"]
    assert "{customer}" in err["message"]  # the known ones are listed
    ok = write(client, org.headers["county_x"], body="您好 {customer}")
    assert ok["placeholders"] == ["customer"]
    r = client.patch(
        f"/api/v1/phrases/{ok['id']}",
        headers=org.headers["county_x"],
        json={"version": 1, "body": "{nope}"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body"


def test_scope_matrix_phrases(client, db):
    org = build_org(db, roles=("supervisor",))
    unit_phrases, paths = {}, {}
    for key, unit in org.units.items():
        p = write(client, org.headers["admin"], kind="unit", unit_id=unit.id, title=f"单位-{key}")
        unit_phrases[p["id"]] = unit
        paths[p["id"]] = unit.path
    everyone = write(client, org.headers["admin"], kind="global", title="全体")["id"]
    personal = {k: write(client, org.headers[k], title=f"个人-{k}")["id"] for k in org.units}
    every = [*unit_phrases, everyone, *personal.values()]
    for key in [*org.units, "admin"]:
        got = {p["id"] for p in list_all(client, "/api/v1/phrases", org.headers[key])}
        if key == "admin":
            want = set(every)
        else:
            mine = org.units[key].path
            below = org.subtree(key)
            want = {i for i, u in unit_phrases.items() if u.id in below}
            want |= {i for i, p in paths.items() if mine.startswith(p)}  # above: to use
            want |= {everyone, personal[key]}
        assert got == want, key
        for pid in every:
            r = client.get(f"/api/v1/phrases/{pid}", headers=org.headers[key])
            assert r.status_code == (200 if pid in want else 404), (key, pid)
            if pid not in want:
                for method, body in (("PATCH", {"version": 1, "title": "越界"}), ("DELETE", None)):
                    w = client.request(
                        method, f"/api/v1/phrases/{pid}", headers=org.headers[key], json=body
                    )
                    assert w.status_code == 404, (key, method, pid)


def test_who_writes_what(client, db):
    org = build_org(db, roles=("supervisor",))
    agent_h = token_for(db, make_staff(db, org.county_x, username="agent-x"))
    write(client, agent_h, 403, kind="unit", unit_id=org.county_x.id)
    write(client, agent_h, 403, kind="global")
    write(client, org.headers["city_a"], 403, kind="global")
    bad = write(client, org.headers["city_a"], 422, kind="unit", unit_id=org.city_b.id)
    assert bad["errors"][0]["field"] == "unit_id"
    p = write(client, org.headers["city_a"], kind="unit", unit_id=org.county_x.id)
    # The county's agent uses it but cannot change it; the city supervisor can.
    url = f"/api/v1/phrases/{p['id']}"
    assert client.get(url, headers=agent_h).status_code == 200
    assert client.patch(url, headers=agent_h, json={"version": 1, "title": "改"}).status_code == 403
    r = client.patch(url, headers=org.headers["province"], json={"version": 1, "title": "省改"})
    assert r.status_code == 200 and r.json()["version"] == 2
    r = client.patch(url, headers=org.headers["city_a"], json={"version": 1, "title": "旧"})
    assert r.status_code == 409
    assert client.delete(url, headers=org.headers["city_a"]).status_code == 204
    actions = db.scalars(
        select(AuditEntry.action).where(
            AuditEntry.object_type == "phrase", AuditEntry.object_id == str(p["id"])
        )
    ).all()
    assert sorted(actions) == ["phrase.create", "phrase.delete", "phrase.update"]


def test_rendered_for_a_ticket_in_scope_only(client, db):
    org = build_org(db, roles=("supervisor",))
    agent = make_staff(db, org.county_x, username="agent-x", display_name="王五")
    customer = make_customer(db, org.county_x, "甲公司")
    contact = customer_service.add_contact(db, SYSTEM, customer.id, ContactCreate(name="李四"))
    data = TicketCreate(
        customer_id=customer.id,
        contact_id=contact.id,
        category_code="technical_support",
        subject="专线中断",
        priority="high",
    )
    t = tickets.open_ticket(db, SYSTEM, data, channel="phone")
    other = tickets.open_ticket(
        db,
        SYSTEM,
        TicketCreate(
            customer_id=make_customer(db, org.county_z).id,
            category_code="technical_support",
            subject="别处",
        ),
        channel="phone",
    )
    db.commit()
    h = token_for(db, agent)
    body = "{contact}您好，{ticket_number}「{subject}」由{agent}处理，预计{due}前解决。{unit}"
    p = write(client, h, body=body)
    r = client.get(f"/api/v1/phrases/{p['id']}/rendered?ticket_id={t.id}", headers=h)
    assert r.status_code == 200, r.text
    text = r.json()["text"]
    assert text.startswith(f"李四您好，{t.number}「专线中断」由王五处理，预计")
    assert "{" not in text and text.endswith("X县")
    assert "2026" in text  # the due time, in the handling unit's zone
    r = client.get(f"/api/v1/phrases/{p['id']}/rendered?ticket_id={other.id}", headers=h)
    assert r.status_code == 404
    theirs = write(client, org.headers["county_z"], body="{customer}")
    r = client.get(f"/api/v1/phrases/{theirs['id']}/rendered?ticket_id={t.id}", headers=h)
    assert r.status_code == 404
