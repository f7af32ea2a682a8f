"""Collaborators (seen through the scope's "explicitly assigned" branch, proven by the scope
matrix; timeline, audit, outbox) and merging a duplicate ticket (copies visible from the
target, the duplicate closed with a link, refusals that write nothing, optimistic locking)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from kefu import clock
from kefu.audit.models import AuditEntry
from kefu.notifications.models import OutboxMessage
from kefu.tickets.models import TicketAttachment, TicketEvent
from tests.factories import make_customer, make_staff, make_unit, token_for
from tests.scope_matrix import build_org, check_scope

SH = ZoneInfo("Asia/Shanghai")
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n"


@pytest.fixture(autouse=True)
def tuesday_morning():
    clock.set_now(lambda: datetime(2026, 11, 24, 10, tzinfo=SH).astimezone(UTC))


def open_ticket(client, h, customer_id, subject="专线中断", **kw):
    body = {
        "customer_id": customer_id,
        "category_code": "technical_support",
        "subject": subject,
        **kw,
    }
    r = client.post("/api/v1/tickets", headers=h, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def events(db, ticket_id, kind=None):
    stmt = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
    if kind:
        stmt = stmt.where(TicketEvent.kind == kind)
    return db.scalars(stmt).all()


# --- collaborators --------------------------------------------------------------------------------


def test_a_collaborator_sees_the_ticket_through_the_scope(client, db):
    org = build_org(db)
    records = {}
    for unit in org.units.values():
        customer = make_customer(db, unit)
        db.commit()
        records[open_ticket(client, org.headers["admin"], customer.id)["id"]] = unit
    x_ticket = next(i for i, u in records.items() if u.id == org.county_x.id)
    helper = org.people["county_z"]  # another city's county: outside county X's subtree
    h = org.headers["county_x"]
    r = client.post(
        f"/api/v1/tickets/{x_ticket}/collaborators", headers=h, json={"staff_id": helper.id}
    )
    assert r.status_code == 201, r.text
    assert r.json()["display_name"] == helper.display_name
    check_scope(
        client,
        org,
        list_url="/api/v1/tickets",
        detail_url=lambda i: f"/api/v1/tickets/{i}",
        records=records,
        extra_visible=lambda key: {x_ticket} if key == "county_z" else set(),
        write=("PATCH", {"version": 1, "priority": "low"}),
    )
    # The collaborator may work the ticket (a note) and list its collaborators.
    zh = org.headers["county_z"]
    assert (
        client.post(
            f"/api/v1/tickets/{x_ticket}/messages",
            headers=zh,
            json={"body": "我来看看", "internal": True},
        ).status_code
        == 201
    )
    names = client.get(f"/api/v1/tickets/{x_ticket}/collaborators", headers=zh).json()
    assert [c["id"] for c in names] == [helper.id]
    # Removed: the ticket is out of their scope again (404, on reads and writes).
    r = client.delete(f"/api/v1/tickets/{x_ticket}/collaborators/{helper.id}", headers=h)
    assert r.status_code == 204
    assert client.get(f"/api/v1/tickets/{x_ticket}", headers=zh).status_code == 404
    assert client.get(f"/api/v1/tickets/{x_ticket}/collaborators", headers=zh).status_code == 404
    check_scope(
        client,
        org,
        list_url="/api/v1/tickets",
        detail_url=lambda i: f"/api/v1/tickets/{i}/collaborators",
        records=records,
        write=("POST", {"staff_id": helper.id}),
    )


def test_collaborator_endpoints_out_of_scope_are_404(client, db):
    org = build_org(db)
    customer = make_customer(db, org.county_y)
    db.commit()
    theirs = open_ticket(client, org.headers["admin"], customer.id)["id"]
    client.post(
        f"/api/v1/tickets/{theirs}/collaborators",
        headers=org.headers["admin"],
        json={"staff_id": org.people["county_y"].id},
    )
    h = org.headers["county_x"]
    me = org.people["county_x"].id
    assert client.get(f"/api/v1/tickets/{theirs}/collaborators", headers=h).status_code == 404
    r = client.post(f"/api/v1/tickets/{theirs}/collaborators", headers=h, json={"staff_id": me})
    assert r.status_code == 404  # a person cannot add themselves to a ticket they cannot see
    r = client.delete(
        f"/api/v1/tickets/{theirs}/collaborators/{org.people['county_y'].id}", headers=h
    )
    assert r.status_code == 404
    r = client.post(
        f"/api/v1/tickets/{theirs}/merge", headers=h, json={"into_id": theirs, "version": 1}
    )
    assert r.status_code == 404
    assert (
        db.scalar(
            select(func.count())
            .select_from(TicketEvent)
            .where(TicketEvent.ticket_id == theirs, TicketEvent.kind == "collaborator")
        )
        == 1
    )


def test_adding_records_notifies_and_refuses_bad_input(client, db):
    unit = make_unit(db)
    other_unit = make_unit(db)
    agent = make_staff(db, unit, roles=("agent",))
    expert = make_staff(db, other_unit, roles=("agent",), display_name="李专家")
    gone = make_staff(db, other_unit, roles=("agent",))
    gone.is_active = False
    customer = make_customer(db, unit)
    db.commit()
    h = token_for(db, agent)
    t = open_ticket(client, h, customer.id)
    url = f"/api/v1/tickets/{t['id']}/collaborators"
    assert client.post(url, headers=h, json={"staff_id": expert.id}).status_code == 201
    ev = events(db, t["id"], "collaborator")
    assert [(e.data["staff_id"], e.data["action"]) for e in ev] == [(expert.id, "added")]
    out = db.scalars(
        select(OutboxMessage).where(OutboxMessage.topic == "ticket.collaborator_added")
    ).all()
    assert [o.recipient for o in out] == [f"staff:{expert.id}"]
    assert out[0].payload["number"] == t["number"]
    audit = db.scalars(select(AuditEntry).where(AuditEntry.action == "ticket.collaborator")).one()
    assert audit.changes == {"collaborators": {"before": [], "after": [expert.id]}}
    for body, field in [
        ({"staff_id": expert.id}, "staff_id"),
        ({"staff_id": gone.id}, "staff_id"),
        ({"staff_id": 999999}, "staff_id"),
        ({"staff_id": "李"}, "staff_id"),
        ({}, "staff_id"),
    ]:
        r = client.post(url, headers=h, json=body)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, (body, r.text)
    dup = client.post(url, headers={**h, "Accept-Language": "en"}, json={"staff_id": expert.id})
    assert dup.json()["errors"][0]["message"] == "李专家 collaborates on this ticket already."
    assert client.delete(f"{url}/{gone.id}", headers=h).status_code == 404
    assert len(events(db, t["id"], "collaborator")) == 1  # refusals wrote nothing
    assert client.delete(f"{url}/{expert.id}", headers=h).status_code == 204
    assert [e.data["action"] for e in events(db, t["id"], "collaborator")] == ["added", "removed"]
    # Added again: told again (a new event, a new outbox row).
    assert client.post(url, headers=h, json={"staff_id": expert.id}).status_code == 201
    assert (
        db.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.topic == "ticket.collaborator_added")
        )
        == 2
    )


# --- merge ---------------------------------------------------------------------------------


@pytest.fixture
def pair(client, db):
    unit = make_unit(db)
    agent = make_staff(db, unit, roles=("agent",))
    helper = make_staff(db, unit, roles=("agent",))
    customer = make_customer(db, unit)
    other_customer = make_customer(db, unit)
    db.commit()
    h = token_for(db, agent)
    source = open_ticket(
        client, h, customer.id, "重复：专线中断", description="<p>第二次来电</p>", tags=["Fibre"]
    )
    target = open_ticket(client, h, customer.id, "专线中断", tags=["vip"])
    sid = source["id"]
    client.post(f"/api/v1/tickets/{sid}/messages", headers=h, json={"body": "已收到"})
    client.post(
        f"/api/v1/tickets/{sid}/messages",
        headers=h,
        json={"body": "内部：同一故障", "internal": True},
    )
    r = client.post(
        f"/api/v1/tickets/{sid}/attachments",
        headers=h,
        files={"file": ("故障单.pdf", PDF, "application/pdf")},
    )
    assert r.status_code == 201, r.text
    client.post(f"/api/v1/tickets/{sid}/collaborators", headers=h, json={"staff_id": helper.id})
    stranger = open_ticket(client, h, other_customer.id, "别家的")
    source = client.get(f"/api/v1/tickets/{sid}", headers=h).json()
    return {
        "h": h,
        "source": source,
        "target": target,
        "stranger": stranger,
        "helper": helper,
        "unit": unit,
    }


def test_merge_copies_messages_and_files_and_closes_the_duplicate(client, db, pair):
    h, source, target = pair["h"], pair["source"], pair["target"]
    r = client.post(
        f"/api/v1/tickets/{source['id']}/merge",
        headers=h,
        json={"into_id": target["id"], "version": source["version"], "reason": "同一故障"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"]["state"] == "closed"
    assert body["source"]["merged_into_id"] == target["id"]
    assert body["target"]["state"] == "new" and body["target"]["tags"] == ["fibre", "vip"]
    # Visible from the target: the description, the reply, the note, the file.
    timeline = client.get(f"/api/v1/tickets/{target['id']}/events", headers=h).json()["items"]
    copied = [
        e
        for e in timeline
        if e["data"].get("merged_from") == source["id"] and e["kind"] != "merged"
    ]
    assert [e["kind"] for e in copied] == ["created", "reply", "note", "attachment"]
    assert copied[0]["body"] == "<p>第二次来电</p>" and copied[2]["public"] is False
    merged = [e for e in timeline if e["kind"] == "merged"]
    assert merged[0]["data"]["number"] == source["number"]
    files = client.get(f"/api/v1/tickets/{target['id']}/attachments", headers=h).json()
    assert [f["filename"] for f in files] == ["故障单.pdf"]
    assert copied[3]["data"]["attachment_id"] == files[0]["id"]
    got = client.get(f"/api/v1/tickets/{target['id']}/attachments/{files[0]['id']}", headers=h)
    assert got.status_code == 200 and got.content == PDF
    # The duplicate: its own history kept, plus the link.
    src_events = client.get(f"/api/v1/tickets/{source['id']}/events", headers=h).json()["items"]
    assert src_events[-1]["kind"] == "merged"
    assert src_events[-1]["data"]["merged_into"] == target["id"]
    names = client.get(f"/api/v1/tickets/{target['id']}/collaborators", headers=h).json()
    assert [c["id"] for c in names] == [pair["helper"].id]
    audit = db.scalars(
        select(AuditEntry).where(AuditEntry.action == "ticket.merge").order_by(AuditEntry.id)
    ).all()
    assert [a.object_id for a in audit] == [str(source["id"]), str(target["id"])]
    assert audit[0].changes["merged_into_id"]["after"] == target["id"]
    assert audit[1].changes["copied_messages"]["after"] == 4
    told = db.scalars(select(OutboxMessage).where(OutboxMessage.topic == "ticket.merged")).one()
    assert told.payload["into_number"] == target["number"]
    # Once merged, never again (it is closed).
    again = client.post(
        f"/api/v1/tickets/{source['id']}/merge",
        headers=h,
        json={"into_id": target["id"], "version": body["source"]["version"]},
    )
    assert again.status_code == 422


def test_merge_refusals_write_nothing(client, db, pair):
    h, source, target = pair["h"], pair["source"], pair["target"]
    url = f"/api/v1/tickets/{source['id']}/merge"

    def counts():
        return (
            db.scalar(select(func.count()).select_from(TicketEvent)),
            db.scalar(select(func.count()).select_from(TicketAttachment)),
        )

    other_unit = make_unit(db)
    elsewhere_customer = make_customer(db, other_unit)
    db.commit()
    admin_h = token_for(db, make_staff(db, other_unit, roles=("admin",)))
    hidden = open_ticket(client, admin_h, elsewhere_customer.id)  # not visible to the agent
    before = counts()
    cases = [
        ({"into_id": pair["stranger"]["id"]}, 422, "into_id"),  # another customer
        ({"into_id": source["id"]}, 422, "into_id"),  # itself
        ({"into_id": 999999}, 422, "into_id"),
        ({"into_id": hidden["id"]}, 422, "into_id"),  # exists, but not for this agent
        ({"into_id": target["id"], "version": source["version"] - 1}, 409, None),
        ({"into_id": "T2026"}, 422, "into_id"),
        ({"version": source["version"]}, 422, "into_id"),
    ]
    for change, status, field in cases:
        r = client.post(url, headers=h, json={"version": source["version"], **change})
        assert r.status_code == status, (change, r.text)
        if field:
            assert r.json()["errors"][0]["field"] == field, (change, r.json())
    assert counts() == before
    missing = client.post(url, headers=h, json={"into_id": 999999, "version": 1}).json()
    assert (
        missing == client.post(url, headers=h, json={"into_id": hidden["id"], "version": 1}).json()
    )  # no leak
    # Into a closed ticket: refused, naming it.
    t = pair["target"]
    for state in ("resolved", "closed"):
        t = client.patch(
            f"/api/v1/tickets/{t['id']}", headers=h, json={"version": t["version"], "state": state}
        ).json()
    before = counts()
    r = client.post(
        url,
        headers={**h, "Accept-Language": "en"},
        json={"into_id": t["id"], "version": source["version"]},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["message"] == f"The ticket {t['number']} is closed."
    assert counts() == before
    assert client.get(f"/api/v1/tickets/{source['id']}", headers=h).json()["state"] != "closed"
