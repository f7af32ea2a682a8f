"""Custom ticket fields on the pages: the admin definitions, the ticket page's panel (shown,
edited with the version, errors beside the field), the intake form's fields of the chosen
category (page and HTMX fragment), and scope."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from kefu import clock
from kefu.scope import SYSTEM
from kefu.tickets import fields, service
from kefu.tickets.models import Category, Ticket, TicketField
from kefu.tickets.schemas import ChoiceIn, TicketCreate, TicketFieldCreate
from tests.factories import make_customer, make_staff, make_unit
from tests.scope_matrix import build_org
from tests.web.helpers import HX, field_error, post, signed_in

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def tuesday_morning():
    clock.set_now(lambda: datetime(2026, 11, 24, 10, tzinfo=SH).astimezone(UTC))


def define_fibre(db):
    db.add(
        Category(
            code="fibre_fault",
            parent_code="fault_repair",
            name_zh="光纤故障",
            name_en="Fibre fault",
        )
    )
    db.flush()
    specs = [
        TicketFieldCreate(
            key="line_id",
            label_zh="线路编号",
            label_en="Line ID",
            type="text",
            category_code="fault_repair",
            required=True,
            position=1,
        ),
        TicketFieldCreate(
            key="loss_db",
            label_zh="衰耗",
            label_en="Loss (dB)",
            type="number",
            category_code="fibre_fault",
            position=2,
        ),
        TicketFieldCreate(
            key="fibre_kind",
            label_zh="光纤类型",
            label_en="Fibre kind",
            type="choice",
            category_code="fibre_fault",
            position=3,
            choices=[
                ChoiceIn(value="sm", label_zh="单模", label_en="Single-mode"),
                ChoiceIn(value="mm", label_zh="多模", label_en="Multi-mode"),
            ],
        ),
    ]
    for spec in specs:
        fields.create_definition(db, SYSTEM, spec)
    db.commit()


def open_fibre(db, customer, **custom):
    data = TicketCreate(
        customer_id=customer.id,
        category_code="fibre_fault",
        subject="光缆中断",
        custom_fields={"line_id": "GZ-1", **custom},
    )
    t = service.open_ticket(db, SYSTEM, data, channel="phone")
    db.commit()
    return t


@pytest.fixture
def agent_with_ticket(client, db):
    unit = make_unit(db, "西湖区支局", region_code="330106")
    agent = make_staff(db, unit, roles=("agent",))
    customer = make_customer(db, unit, "杭州西湖电子有限公司")
    define_fibre(db)
    t = open_fibre(db, customer, loss_db=3, fibre_kind="sm")
    signed_in(client, agent.username)
    return t, customer


def test_ticket_page_shows_and_edits_fields(client, db, agent_with_ticket):
    t, _ = agent_with_ticket
    page = client.get(f"/tickets/{t.id}")
    assert page.status_code == 200
    assert 'id="fields"' in page.text and "线路编号" in page.text and "单模" in page.text
    assert 'name="cf__loss_db"' in page.text and 'type="number"' in page.text
    r = post(
        client,
        f"/tickets/{t.id}/fields",
        {
            "version": str(t.version),
            "cf__line_id": "GZ-2",
            "cf__loss_db": "4.5",
            "cf__fibre_kind": "mm",
        },
    )
    assert r.status_code == 303 and r.headers["location"].startswith(f"/tickets/{t.id}")
    db.expire_all()
    assert db.get(Ticket, t.id).custom_fields == {
        "line_id": "GZ-2",
        "loss_db": 4.5,
        "fibre_kind": "mm",
    }
    page = client.get(f"/tickets/{t.id}").text
    assert "衰耗 3 → 4.5" in page  # the timeline says what changed


def test_bad_field_is_named_beside_it_and_nothing_changes(client, db, agent_with_ticket):
    t, _ = agent_with_ticket
    bad = post(
        client,
        f"/tickets/{t.id}/fields",
        {
            "version": str(t.version),
            "cf__line_id": "",
            "cf__loss_db": "很多",
            "cf__fibre_kind": "sm",
        },
        headers=HX,
    )
    assert bad.status_code == 422
    assert field_error(bad.text, "f-cf-cf__line_id") == "线路编号为必填项。"
    assert field_error(bad.text, "f-cf-cf__loss_db") == "衰耗必须是数字（最多 4 位小数）。"
    assert 'value="很多"' in bad.text  # what was typed stays
    db.expire_all()
    assert db.get(Ticket, t.id).custom_fields["loss_db"] == 3
    # In English, by the English labels.
    client.cookies.set("kefu_lang", "en")
    bad = post(
        client,
        f"/tickets/{t.id}/fields",
        {"version": str(t.version), "cf__line_id": "X", "cf__loss_db": "lots"},
    )
    assert field_error(bad.text, "f-cf-cf__loss_db") == (
        "Loss (dB) must be a number (at most 4 decimal places)."
    )
    # A stale version: 409, nothing written.
    stale = post(
        client, f"/tickets/{t.id}/fields", {"version": str(t.version - 1), "cf__line_id": "Y"}
    )
    assert stale.status_code == 409


def test_intake_form_shows_the_fields_of_the_chosen_category(client, db, agent_with_ticket):
    _, customer = agent_with_ticket
    fragment = client.get(
        "/tickets/new/fields?category_code=fibre_fault",
        headers={**HX, "HX-Target": "intake-fields"},
    )
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert fragment.text.index("cf__line_id") < fragment.text.index("cf__loss_db")
    assert "cf__fibre_kind" in fragment.text
    other = client.get("/tickets/new/fields?category_code=other", headers=HX)
    assert "cf__" not in other.text
    page = client.get(f"/tickets/new?customer_id={customer.id}")
    assert 'hx-get="/tickets/new/fields"' in page.text and 'id="intake-fields"' in page.text
    before = db.scalar(select(func.count()).select_from(Ticket))
    form = {
        "customer_id": str(customer.id),
        "channel": "phone",
        "category_code": "fibre_fault",
        "priority": "normal",
        "subject": "又断了",
        "cf__line_id": "",
        "cf__loss_db": "x",
    }
    bad = post(client, "/tickets/new", form)
    assert bad.status_code == 422
    assert field_error(bad.text, "f-new-cf__line_id") == "线路编号为必填项。"
    assert field_error(bad.text, "f-new-cf__loss_db")
    assert db.scalar(select(func.count()).select_from(Ticket)) == before
    ok = post(client, "/tickets/new", {**form, "cf__line_id": "GZ-9", "cf__loss_db": "2"})
    assert ok.status_code == 303
    db.expire_all()
    made = db.scalars(select(Ticket).order_by(Ticket.id.desc())).first()
    assert made.custom_fields == {"line_id": "GZ-9", "loss_db": 2}


def test_admin_pages_define_and_edit_fields(client, db):
    unit = make_unit(db)
    make_staff(db, unit, username="fields.admin", roles=("admin",))
    make_staff(db, unit, username="plain.agent", roles=("agent",))
    db.commit()
    signed_in(client, "plain.agent")
    assert client.get("/ticket-fields").status_code == 404
    assert post(client, "/ticket-fields", {"key": "x"}).status_code == 404
    client.cookies.clear()
    signed_in(client, "fields.admin")
    page = client.get("/ticket-fields")
    assert page.status_code == 200 and "工单字段" in page.text and "还没有定义任何字段" in page.text
    bad = post(
        client,
        "/ticket-fields",
        {
            "key": "kind",
            "label_zh": "类型",
            "label_en": "Kind",
            "type": "choice",
            "choices": "a | 甲\n",
            "is_active": "1",
        },
    )
    assert bad.status_code == 422
    assert field_error(bad.text, "f-fd-choices") == "第 1 行：请写成 值 | 中文 | English。"
    ok = post(
        client,
        "/ticket-fields",
        {
            "key": "kind",
            "category_code": "fault_repair",
            "label_zh": "类型",
            "label_en": "Kind",
            "type": "choice",
            "choices": "a | 甲 | A\nb | 乙 | B",
            "required": "1",
            "is_active": "1",
            "position": "5",
        },
    )
    assert ok.status_code == 303
    row = db.scalars(select(TicketField).where(TicketField.key == "kind")).one()
    assert row.required and row.choices[1] == {"value": "b", "label_zh": "乙", "label_en": "B"}
    edit = client.get(f"/ticket-fields/{row.id}")
    assert edit.status_code == 200 and "b | 乙 | B" in edit.text
    r = post(
        client,
        f"/ticket-fields/{row.id}",
        {
            "label_zh": "种类",
            "label_en": "Kind",
            "type": "choice",
            "category_code": "",
            "choices": "a | 甲 | A",
            "position": "1",
        },
    )
    assert r.status_code == 303
    db.expire_all()
    row = db.get(TicketField, row.id)
    assert row.label_zh == "种类" and row.category_code is None and not row.is_active
    assert not row.required
    listing = client.get("/ticket-fields", headers=HX)
    assert "种类" in listing.text and "所有类别" in listing.text


def test_fields_page_out_of_scope_is_404(client, db):
    org = build_org(db, roles=("agent",))
    define_fibre(db)
    theirs = open_fibre(db, make_customer(db, org.county_y))
    signed_in(client, "m-county-x")
    assert client.get(f"/tickets/{theirs.id}").status_code == 404
    r = post(
        client,
        f"/tickets/{theirs.id}/fields",
        {"version": str(theirs.version), "cf__line_id": "hijack"},
    )
    assert r.status_code == 404
    db.expire_all()
    assert db.get(Ticket, theirs.id).custom_fields["line_id"] == "GZ-1"
