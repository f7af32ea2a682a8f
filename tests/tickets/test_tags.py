"""Tags: cleaned (trimmed, lowercase, no duplicates, sorted), refused when they hold markup or
separators, edited with the version, recorded, filterable, and never beyond scope."""

from __future__ import annotations

from sqlalchemy import select

from kefu.audit.models import AuditEntry
from kefu.tickets.models import TicketEvent
from tests.factories import make_customer, make_staff, make_unit, token_for
from tests.scope_matrix import build_org, check_scope


def open_ticket(client, h, customer_id, **kw):
    body = {"customer_id": customer_id, "category_code": "other", "subject": "标签", **kw}
    r = client.post("/api/v1/tickets", headers=h, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_tags_are_cleaned_edited_and_filtered(client, db):
    unit = make_unit(db)
    h = token_for(db, make_staff(db, unit, roles=("agent",)))
    customer = make_customer(db, unit)
    db.commit()
    t = open_ticket(client, h, customer.id, tags=["  VIP ", "光纤", "vip", "Key  Account"])
    assert t["tags"] == ["key account", "vip", "光纤"]
    other = open_ticket(client, h, customer.id, tags=["vipx"])
    url = f"/api/v1/tickets/{t['id']}"
    for bad in (["<b>x</b>"], ["a,b"], ['say "hi"'], ["back\\slash"], ["x" * 41], ["t"] * 21):
        r = client.patch(url, headers=h, json={"version": t["version"], "tags": bad})
        assert r.status_code == 422, bad
        assert r.json()["errors"][0]["field"].split(".")[0] == "tags", r.json()
        r = client.post(
            "/api/v1/tickets",
            headers=h,
            json={
                "customer_id": customer.id,
                "category_code": "other",
                "subject": "坏标签",
                "tags": bad,
            },
        )
        assert r.status_code == 422, bad
    r = client.patch(url, headers=h, json={"version": t["version"], "tags": ["光纤", "Urgent"]})
    assert r.status_code == 200 and r.json()["tags"] == ["urgent", "光纤"]
    stale = client.patch(url, headers=h, json={"version": t["version"], "tags": []})
    assert stale.status_code == 409
    ev = db.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == t["id"], TicketEvent.kind == "field")
    ).one()
    assert ev.data == {
        "field": "tags",
        "before": ["key account", "vip", "光纤"],
        "after": ["urgent", "光纤"],
    }
    assert db.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "ticket.update", AuditEntry.object_id == str(t["id"])
        )
    ).one()

    def tagged(tag):
        r = client.get("/api/v1/tickets", headers=h, params={"tag": tag})
        assert r.status_code == 200
        return {x["id"] for x in r.json()["items"]}

    assert tagged("光纤") == {t["id"]}
    assert tagged(" URGENT ") == {t["id"]}
    assert tagged("vip") == set()  # "vipx" is another tag, not a match
    assert tagged("vipx") == {other["id"]}


def test_tag_filter_stays_in_scope(client, db):
    org = build_org(db)
    records = {}
    for unit in org.units.values():
        customer = make_customer(db, unit)
        db.commit()
        records[open_ticket(client, org.headers["admin"], customer.id, tags=["专线"])["id"]] = unit
        open_ticket(client, org.headers["admin"], customer.id, tags=["其他"])
    check_scope(
        client,
        org,
        list_url="/api/v1/tickets?tag=专线",
        detail_url=lambda i: f"/api/v1/tickets/{i}",
        records=records,
        write=("PATCH", {"version": 1, "tags": ["越权"]}),
    )
