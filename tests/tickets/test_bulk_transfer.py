"""Bulk transfer (POST /api/v1/tickets/bulk, action "transfer"): the single-ticket transfer
ticket by ticket, all or nothing, within the caller's scope."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from kefu import clock
from kefu.audit.models import AuditEntry
from kefu.errors import Invalid
from kefu.notifications.models import OutboxMessage
from kefu.scope import SYSTEM, Viewer
from kefu.tickets import bulk
from kefu.tickets import service as tickets
from kefu.tickets.models import Ticket, TicketEvent
from kefu.tickets.schemas import BulkAction, TicketCreate
from tests.factories import make_customer, make_staff, make_unit
from tests.scope_matrix import build_org

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def tuesday_morning():
    clock.set_now(lambda: datetime(2026, 11, 24, 10, tzinfo=SH).astimezone(UTC))


def open_ticket(db, customer, subject):
    data = TicketCreate(customer_id=customer.id, category_code="technical_support", subject=subject)
    t = tickets.open_ticket(db, SYSTEM, data, channel="phone")
    db.commit()
    return t


def items(*ts, stale=()):
    return [{"id": t.id, "version": t.version - (1 if t in stale else 0)} for t in ts]


def transfers(db):
    return db.scalars(select(AuditEntry).where(AuditEntry.action == "ticket.transfer")).all()


def test_bulk_transfer_moves_each_ticket_as_a_single_transfer_would(client, db):
    org = build_org(db, roles=("supervisor",))
    y1 = make_staff(db, org.county_y, username="agent-y1")
    y2 = make_staff(db, org.county_y, username="agent-y2")
    x = make_customer(db, org.county_x)
    ts = [open_ticket(db, x, f"转交{i}") for i in range(3)]
    h = org.headers["city_a"]
    versions = {t.id: t.version for t in ts}
    body = {
        "action": "transfer",
        "unit_id": org.county_y.id,
        "reason": "Y县负责上门",
        "tickets": items(*ts),
    }
    r = client.post("/api/v1/tickets/bulk", headers=h, json=body)
    assert r.status_code == 200, r.text
    out = r.json()["items"]
    assert [t["handling_unit_id"] for t in out] == [org.county_y.id] * 3
    # The least-loaded agent of the unit, ticket by ticket: the work is shared out.
    assert {t["assignee_id"] for t in out} == {y1.id, y2.id}
    db.expire_all()
    for t in ts:
        row = db.get(Ticket, t.id)
        # One UPDATE per ticket: the version moves by one (it moved by two before).
        assert row.handling_unit_id == org.county_y.id and row.version == versions[t.id] + 1
        route = db.scalars(
            select(TicketEvent).where(
                TicketEvent.ticket_id == t.id,
                TicketEvent.kind == "route",
                TicketEvent.actor == "m-city-a",
            )
        ).one()
        assert route.data["reason"] == "Y县负责上门" and route.data["previous"] == org.county_x.id
        assert route.data["linked"] is True
    assert sorted(int(a.object_id) for a in transfers(db)) == sorted(t.id for t in ts)
    notices = db.scalars(
        select(OutboxMessage).where(OutboxMessage.topic == "ticket.transferred")
    ).all()
    assert {n.recipient for n in notices} == {f"unit:{org.county_y.id}"} and len(notices) == 3


def test_bulk_transfer_to_a_person_keeps_the_unit(client, db):
    org = build_org(db, roles=("supervisor",))
    other = make_staff(db, org.city_b, username="agent-b")  # a person of another unit: allowed
    x = make_customer(db, org.county_x)
    a, b = open_ticket(db, x, "甲"), open_ticket(db, x, "乙")
    body = {
        "action": "transfer",
        "assignee_id": other.id,
        "reason": "请乙市专家处理",
        "tickets": items(a, b),
    }
    r = client.post("/api/v1/tickets/bulk", headers=org.headers["county_x"], json=body)
    assert r.status_code == 200, r.text
    assert {(t["handling_unit_id"], t["assignee_id"]) for t in r.json()["items"]} == {
        (org.county_x.id, other.id)
    }


def test_bulk_transfer_is_all_or_nothing(client, db):
    org = build_org(db, roles=("supervisor",))
    make_staff(db, org.county_y, username="agent-y")
    x = make_customer(db, org.county_x)
    a, b = open_ticket(db, x, "甲"), open_ticket(db, x, "乙")
    hidden = open_ticket(db, make_customer(db, org.county_z), "别处的单")
    va, vb = a.version, b.version
    h = org.headers["city_a"]
    body = {"action": "transfer", "unit_id": org.county_y.id, "reason": "转交"}
    # A ticket out of scope fails the whole request, named by its place only.
    r = client.post("/api/v1/tickets/bulk", headers=h, json={**body, "tickets": items(a, hidden)})
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["tickets.1.id"]
    assert hidden.number not in r.text
    # A stale version: 409, naming it.
    r = client.post(
        "/api/v1/tickets/bulk", headers=h, json={**body, "tickets": items(a, b, stale=(b,))}
    )
    assert r.status_code == 409, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["tickets.1.version"]
    db.expire_all()
    assert db.get(Ticket, a.id).handling_unit_id == org.county_x.id
    assert db.get(Ticket, a.id).version == va
    assert db.get(Ticket, hidden.id).handling_unit_id == org.county_z.id
    assert transfers(db) == []
    # The single transfer's rules, checked once, before any ticket: named without a ticket.
    cases = [
        ({"reason": "x"}, "reason"),  # too short for a transfer
        ({"reason": ""}, "reason"),
        ({"unit_id": None}, "unit_id"),  # neither unit nor person
        ({"unit_id": 999_999}, "unit_id"),
        ({"unit_id": None, "assignee_id": 999_999}, "assignee_id"),
    ]
    for change, field in cases:
        r = client.post(
            "/api/v1/tickets/bulk", headers=h, json={**body, **change, "tickets": items(a, b)}
        )
        assert r.status_code == 422, (change, r.text)
        assert [e["field"] for e in r.json()["errors"]] == [field], change
    retired = make_unit(db, "撤销的网点", org.county_y, region_code="330110")
    retired.is_active = False
    db.commit()
    r = client.post(
        "/api/v1/tickets/bulk",
        headers=h,
        json={**body, "unit_id": retired.id, "tickets": items(a)},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "unit_id"
    db.expire_all()
    assert transfers(db) == [] and db.get(Ticket, b.id).version == vb


def test_the_service_refuses_a_ticket_out_of_scope_with_nothing_written(db):
    org = build_org(db, roles=("agent",))
    x = make_customer(db, org.county_x)
    mine = open_ticket(db, x, "本县的")
    theirs = open_ticket(db, make_customer(db, org.county_z), "Z县的")
    viewer = Viewer(
        staff_id=org.people["county_x"].id,
        username="m-county-x",
        unit_id=org.county_x.id,
        unit_path=org.county_x.path,
        roles=frozenset({"agent"}),
    )
    data = BulkAction.model_validate(
        {
            "action": "transfer",
            "unit_id": org.county_y.id,
            "reason": "转交",
            "tickets": items(mine, theirs),
        }
    )
    with pytest.raises(Invalid) as refused:
        bulk.bulk_update(db, viewer, data)
    db.rollback()  # as the edge does
    assert [e.field for e in refused.value.errors] == ["tickets.1.id"]
    assert refused.value.params == {"failed": 1, "total": 2}
    db.expire_all()
    assert db.get(Ticket, mine.id).handling_unit_id == org.county_x.id
    assert transfers(db) == []
