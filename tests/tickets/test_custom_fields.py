"""Custom fields per category: definitions (admin API), inheritance, checks at intake and on
edit (every bad field named in the caller's language, nothing half-written), typed filters,
and their scope."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from kefu import clock
from kefu.audit.models import AuditEntry
from kefu.errors import Invalid
from kefu.tickets.models import Category, Ticket, TicketEvent, TicketFieldValue
from tests.factories import make_customer, make_staff, make_unit, token_for
from tests.scope_matrix import build_org, check_scope, list_all

SH = ZoneInfo("Asia/Shanghai")
EN = {"Accept-Language": "en"}


@pytest.fixture(autouse=True)
def tuesday_morning():
    clock.set_now(lambda: datetime(2026, 11, 24, 10, tzinfo=SH).astimezone(UTC))


def define(client, h, **kw):
    body = {"label_zh": kw.get("key", "x"), "label_en": kw.get("key", "x"), "type": "text", **kw}
    r = client.post("/api/v1/ticket-fields", headers=h, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def fibre_fields(client, db, h):
    """fault_repair has a sub-category fibre_fault; fields on both and on every category."""
    db.add(
        Category(
            code="fibre_fault",
            parent_code="fault_repair",
            name_zh="光纤故障",
            name_en="Fibre fault",
        )
    )
    db.commit()
    return {
        "line": define(
            client,
            h,
            key="line_id",
            label_zh="线路编号",
            label_en="Line ID",
            category_code="fault_repair",
            required=True,
            position=1,
        ),
        "loss": define(
            client,
            h,
            key="loss_db",
            label_zh="衰耗",
            label_en="Loss (dB)",
            type="number",
            category_code="fibre_fault",
            position=2,
        ),
        "since": define(
            client,
            h,
            key="down_since",
            label_zh="中断日期",
            label_en="Down since",
            type="date",
            category_code="fibre_fault",
            position=3,
        ),
        "kind": define(
            client,
            h,
            key="fibre_kind",
            label_zh="光纤类型",
            label_en="Fibre kind",
            type="choice",
            category_code="fibre_fault",
            position=4,
            choices=[
                {"value": "sm", "label_zh": "单模", "label_en": "Single-mode"},
                {"value": "mm", "label_zh": "多模", "label_en": "Multi-mode"},
            ],
        ),
        "ref": define(
            client, h, key="crm_ref", label_zh="客户参考号", label_en="Customer ref", position=9
        ),
    }


@pytest.fixture
def setup(client, db):
    unit = make_unit(db)
    admin = make_staff(db, unit, roles=("admin",))
    agent = make_staff(db, unit, roles=("agent",))
    customer = make_customer(db, unit)
    db.commit()
    h = token_for(db, admin)
    defs = fibre_fields(client, db, h)
    return {"h": h, "agent_h": token_for(db, agent), "customer": customer, "defs": defs}


def create(client, h, customer, category="fibre_fault", headers=None, **custom):
    body = {
        "customer_id": customer.id,
        "category_code": category,
        "subject": "光缆中断",
        "custom_fields": custom,
    }
    return client.post("/api/v1/tickets", headers={**h, **(headers or {})}, json=body)


def test_inheritance_and_order(client, setup):
    h = setup["h"]
    keys = [f["key"] for f in client.get("/api/v1/categories/fibre_fault/fields", headers=h).json()]
    assert keys == ["line_id", "loss_db", "down_since", "fibre_kind", "crm_ref"]
    keys = [
        f["key"] for f in client.get("/api/v1/categories/fault_repair/fields", headers=h).json()
    ]
    assert keys == ["line_id", "crm_ref"]  # a parent does not get its children's fields
    keys = [f["key"] for f in client.get("/api/v1/categories/other/fields", headers=h).json()]
    assert keys == ["crm_ref"]
    assert client.get("/api/v1/categories/nope/fields", headers=h).status_code == 404
    english = client.get(
        "/api/v1/ticket-fields/" + str(setup["defs"]["kind"]["id"]), headers={**h, **EN}
    ).json()
    assert english["label"] == "Fibre kind" and english["choices"][0]["label"] == "Single-mode"


def test_intake_stores_typed_values(client, db, setup):
    r = create(
        client,
        setup["agent_h"],
        setup["customer"],
        line_id=" GZ-0042 ",
        loss_db="12.5",
        down_since="2026-11-20",
        fibre_kind="sm",
    )
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["custom_fields"] == {
        "line_id": "GZ-0042",
        "loss_db": 12.5,
        "down_since": "2026-11-20",
        "fibre_kind": "sm",
    }
    rows = db.scalars(select(TicketFieldValue).where(TicketFieldValue.ticket_id == t["id"])).all()
    assert len(rows) == 4
    assert {str(r.value_number) for r in rows if r.value_number is not None} == {"12.5000"}
    again = client.get(f"/api/v1/tickets/{t['id']}", headers=setup["h"]).json()
    assert again["custom_fields"] == t["custom_fields"]


def test_intake_names_every_bad_field_in_the_callers_language(client, db, setup):
    before = db.scalar(select(func.count()).select_from(Ticket))
    r = create(
        client,
        setup["agent_h"],
        setup["customer"],
        loss_db="a lot",
        down_since="20/11/2026",
        fibre_kind="copper",
        colour="red",
        headers=EN,
    )
    assert r.status_code == 422
    errors = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert errors == {
        "custom_fields.colour": "This category has no field “colour”.",
        "custom_fields.line_id": "Line ID is required.",
        "custom_fields.loss_db": "Loss (dB) must be a number (at most 4 decimal places).",
        "custom_fields.down_since": "Down since must be a date (YYYY-MM-DD).",
        "custom_fields.fibre_kind": "Fibre kind must be one of: Single-mode, Multi-mode.",
    }
    r = create(client, setup["agent_h"], setup["customer"], loss_db="1", fibre_kind="copper")
    zh = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert zh["custom_fields.line_id"] == "线路编号为必填项。"
    assert zh["custom_fields.fibre_kind"] == "光纤类型必须是以下之一：单模、多模。"
    # Nothing half-written: no ticket, no values.
    assert db.scalar(select(func.count()).select_from(Ticket)) == before
    assert db.scalar(select(func.count()).select_from(TicketFieldValue)) == 0
    # Fields of another category are unknown here; text refuses markup.
    r = create(
        client, setup["agent_h"], setup["customer"], category="other", loss_db=1, crm_ref="<b>x</b>"
    )
    assert {e["field"] for e in r.json()["errors"]} == {
        "custom_fields.loss_db",
        "custom_fields.crm_ref",
    }


def test_edit_checks_changes_and_records_them(client, db, setup):
    h = setup["agent_h"]
    t = create(client, h, setup["customer"], line_id="L1", loss_db=3).json()
    url = f"/api/v1/tickets/{t['id']}"
    r = client.patch(
        url,
        headers=h,
        json={"version": t["version"], "custom_fields": {"loss_db": "7.25", "crm_ref": "R-9"}},
    )
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["custom_fields"] == {"line_id": "L1", "loss_db": 7.25, "crm_ref": "R-9"}
    # Clearing an optional field removes its value; clearing a required one is refused,
    # and then nothing of the request is applied (the subject stays).
    r = client.patch(
        url,
        headers=h,
        json={
            "version": t["version"],
            "subject": "改了",
            "custom_fields": {"line_id": None, "crm_ref": None},
        },
    )
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["custom_fields.line_id"]
    assert client.get(url, headers=h).json()["subject"] == "光缆中断"
    r = client.patch(
        url, headers=h, json={"version": t["version"], "custom_fields": {"crm_ref": None}}
    )
    t = r.json()
    assert "crm_ref" not in t["custom_fields"]
    stale = client.patch(
        url, headers=h, json={"version": t["version"] - 1, "custom_fields": {"loss_db": 1}}
    )
    assert stale.status_code == 409
    rows = db.scalars(select(TicketFieldValue).where(TicketFieldValue.ticket_id == t["id"])).all()
    assert len(rows) == 2  # line_id, loss_db
    ev = db.scalars(
        select(TicketEvent).where(
            TicketEvent.ticket_id == t["id"], TicketEvent.kind == "custom_fields"
        )
    ).all()
    assert [e.data["changes"] for e in ev] == [
        {"loss_db": {"before": 3, "after": 7.25}, "crm_ref": {"before": None, "after": "R-9"}},
        {"crm_ref": {"before": "R-9", "after": None}},
    ]
    audit = db.scalars(select(AuditEntry).where(AuditEntry.action == "ticket.custom_fields")).all()
    assert audit[0].changes["custom_fields.loss_db"] == {"before": 3, "after": 7.25}


def test_a_retired_choice_stays_until_changed(client, setup):
    h, admin = setup["agent_h"], setup["h"]
    kind = setup["defs"]["kind"]
    t = create(client, h, setup["customer"], line_id="L1", fibre_kind="mm").json()
    r = client.patch(
        f"/api/v1/ticket-fields/{kind['id']}",
        headers=admin,
        json={"choices": [{"value": "sm", "label_zh": "单模", "label_en": "SM"}]},
    )
    assert r.status_code == 200, r.text
    same = client.patch(
        f"/api/v1/tickets/{t['id']}",
        headers=h,
        json={"version": t["version"], "custom_fields": {"fibre_kind": "mm", "loss_db": 2}},
    )
    assert same.status_code == 200, same.text
    again = client.patch(
        f"/api/v1/tickets/{t['id']}",
        headers=h,
        json={"version": same.json()["version"], "custom_fields": {"fibre_kind": "xx"}},
    )
    assert again.status_code == 422


def test_filters_compare_by_type(client, setup):
    h = setup["agent_h"]
    c = setup["customer"]
    a = create(client, h, c, line_id="A", loss_db=9, down_since="2026-11-01", fibre_kind="sm")
    b = create(client, h, c, line_id="B", loss_db=10.5, down_since="2026-11-20", fibre_kind="mm")
    ids = {"a": a.json()["id"], "b": b.json()["id"]}

    def found(*filters, **params):
        r = client.get("/api/v1/tickets", headers=h, params={"field": list(filters), **params})
        assert r.status_code == 200, r.text
        return {k for k, v in ids.items() if v in {t["id"] for t in r.json()["items"]}}

    assert found("loss_db>=10") == {"b"}  # 9 < 10 as numbers (as text "9" > "10")
    assert found("loss_db<=9.5") == {"a"}
    assert found("down_since>=2026-11-15") == {"b"}
    assert found("fibre_kind=sm") == {"a"}
    assert found("line_id=B", "loss_db>=1") == {"b"}
    assert found("loss_db>=1", "fibre_kind=mm", tag="none") == set()
    for bad in ("loss_db>=many", "nope=1", "line_id>=A", "garbage"):
        r = client.get("/api/v1/tickets", headers=h, params={"field": bad})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "field", bad


def test_definitions_refuse_bad_input(client, db, setup):
    h = setup["h"]
    cases = [
        ({"key": "Bad Key"}, "key"),
        ({"key": "line_id"}, "key"),  # taken
        ({"key": "k1", "category_code": "astrology"}, "category_code"),
        ({"key": "k2", "type": "choice"}, "choices"),
        (
            {
                "key": "k3",
                "type": "text",
                "choices": [{"value": "a", "label_zh": "甲", "label_en": "A"}],
            },
            "choices",
        ),
        (
            {
                "key": "k4",
                "type": "choice",
                "choices": [
                    {"value": "a", "label_zh": "甲", "label_en": "A"},
                    {"value": "a", "label_zh": "乙", "label_en": "B"},
                ],
            },
            "choices",
        ),
        ({"key": "k5", "type": "colour"}, "type"),
        ({"key": "k6", "label_zh": ""}, "label_zh"),
    ]
    for change, field in cases:
        body = {"label_zh": "字段", "label_en": "Field", "type": "text", **change}
        r = client.post("/api/v1/ticket-fields", headers=h, json=body)
        assert r.status_code == 422, (change, r.text)
        assert r.json()["errors"][0]["field"] == field, (change, r.json())
    loss = setup["defs"]["loss"]
    create(client, setup["agent_h"], setup["customer"], line_id="L", loss_db=1)
    r = client.patch(f"/api/v1/ticket-fields/{loss['id']}", headers=h, json={"type": "text"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "type"
    r = client.patch(f"/api/v1/ticket-fields/{loss['id']}", headers=h, json={"label_zh": None})
    assert r.status_code == 422
    assert (
        client.patch("/api/v1/ticket-fields/99999", headers=h, json={"required": True}).status_code
        == 404
    )
    # Not an administrator: refused, and nothing changed.
    r = client.post(
        "/api/v1/ticket-fields",
        headers=setup["agent_h"],
        json={"key": "sneaky", "label_zh": "x", "label_en": "x", "type": "text"},
    )
    assert r.status_code == 403
    r = client.patch(
        f"/api/v1/ticket-fields/{loss['id']}", headers=setup["agent_h"], json={"required": True}
    )
    assert r.status_code == 403
    assert client.get(f"/api/v1/ticket-fields/{loss['id']}", headers=h).json()["required"] is False
    # Deactivated: no longer asked for, no longer accepted, listed with ?active=false only.
    client.patch(
        f"/api/v1/ticket-fields/{setup['defs']['line']['id']}", headers=h, json={"is_active": False}
    )
    r = create(client, setup["agent_h"], setup["customer"])
    assert r.status_code == 201, r.text
    keys = {f["key"] for f in client.get("/api/v1/ticket-fields?active=true", headers=h).json()}
    assert "line_id" not in keys


def test_scope_of_definitions_and_field_filters(client, db):
    org = build_org(db, roles=("agent",))
    h = org.headers["admin"]
    define(client, h, key="site_code", label_zh="站点", label_en="Site")
    # Every signed-in person reads the definitions (agents fill them in) …
    for key in [*org.units, "admin"]:
        got = [
            f["key"] for f in client.get("/api/v1/ticket-fields", headers=org.headers[key]).json()
        ]
        assert got == ["site_code"]
    # … and a field filter never widens what a person sees.
    records = {}
    for unit in org.units.values():
        customer = make_customer(db, unit)
        db.commit()
        r = create(client, h, customer, category="other", site_code="S1")
        records[r.json()["id"]] = unit
        create(client, h, customer, category="other", site_code="S2")
    check_scope(
        client,
        org,
        list_url="/api/v1/tickets?field=site_code=S1",
        detail_url=lambda i: f"/api/v1/tickets/{i}",
        records=records,
        write=("PATCH", {"version": 1, "custom_fields": {"site_code": "S3"}}),
    )
    assert all(
        t["custom_fields"]["site_code"] == "S1"
        for t in list_all(client, "/api/v1/tickets?field=site_code=S1", h)
    )
    # Writing definitions is for administrators only.
    r = client.post(
        "/api/v1/ticket-fields",
        headers=org.headers["province"],
        json={"key": "x1", "label_zh": "x", "label_en": "x", "type": "text"},
    )
    assert r.status_code == 403


def test_customer_channels_are_not_asked_for_required_fields(client, db, setup):
    """The portal and email ask no custom field: staff fill the required ones afterwards;
    values that are sent are still checked."""
    from kefu.scope import SYSTEM
    from kefu.tickets import service
    from kefu.tickets.schemas import TicketCreate

    base = {
        "customer_id": setup["customer"].id,
        "category_code": "fibre_fault",
        "subject": "门户提交",
    }
    for channel in ("portal", "email"):
        t = service.open_ticket(db, SYSTEM, TicketCreate(**base), channel=channel)
        assert t.custom_fields == {}
    with pytest.raises(Invalid) as refused:
        service.open_ticket(
            db, SYSTEM, TicketCreate(**base, custom_fields={"loss_db": "x"}), channel="portal"
        )
    assert [e.field for e in refused.value.errors] == ["custom_fields.loss_db"]
    with pytest.raises(Invalid) as refused:
        service.open_ticket(db, SYSTEM, TicketCreate(**base), channel="phone")
    assert [e.field for e in refused.value.errors] == ["custom_fields.line_id"]
