"""The console's saved views and bulk actions (page and HTMX fragment)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from kefu import clock
from kefu.audit.models import AuditEntry
from kefu.scope import SYSTEM
from kefu.tickets import service as tickets
from kefu.tickets.models import Ticket, TicketEvent, TicketView
from kefu.tickets.schemas import TicketCreate, TicketUpdate
from tests.factories import make_customer, make_staff
from tests.scope_matrix import build_org
from tests.web.helpers import HX, post, signed_in

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def tuesday_morning():
    clock.set_now(lambda: datetime(2026, 11, 24, 10, tzinfo=SH).astimezone(UTC))


def open_ticket(db, customer, subject, priority="high"):
    data = TicketCreate(
        customer_id=customer.id,
        category_code="technical_support",
        subject=subject,
        priority=priority,
    )
    t = tickets.open_ticket(db, SYSTEM, data, channel="phone")
    db.commit()
    return t


def shown(html, subjects):
    return {s for s in subjects if f">{s}</a>" in html}


def test_save_a_view_and_choose_it_in_the_sidebar(client, db):
    org = build_org(db, roles=("supervisor",))
    x, y = make_customer(db, org.county_x), make_customer(db, org.county_y)
    open_ticket(db, x, "X紧急", "urgent")
    open_ticket(db, x, "X低", "low")
    open_ticket(db, y, "Y紧急", "urgent")
    subjects = ("X紧急", "X低", "Y紧急")
    signed_in(client, "m-city-a")
    page = client.get("/tickets?view=unit")
    assert shown(page.text, subjects) == set(subjects)
    r = post(
        client, "/tickets/views", {"name": "甲市紧急", "priority": "urgent", "assignee": "anyone"}
    )
    assert r.status_code == 303
    view = db.scalars(select(TicketView).where(TicketView.name == "甲市紧急")).one()
    assert view.unit_id is None and view.filters["priority"] == ["urgent"]
    assert r.headers["location"].startswith(f"/tickets?saved={view.id}")
    page = client.get(f"/tickets?saved={view.id}")
    assert f'href="/tickets?saved={view.id}" aria-current="page"' in page.text
    assert shown(page.text, subjects) == {"X紧急", "Y紧急"}
    # Narrowed further in the form (HTMX): the query string wins over the view.
    frag = client.get(
        f"/tickets?saved={view.id}&priority=urgent&unit_id={org.county_x.id}&assignee=anyone",
        headers={**HX, "HX-Target": "results"},
    )
    assert "<html" not in frag.text and shown(frag.text, subjects) == {"X紧急"}
    # Update it with other filters, then delete it.
    r = post(
        client,
        f"/tickets/views/{view.id}",
        {"version": "1", "name": "甲市低", "priority": "low", "assignee": "anyone"},
    )
    assert r.status_code == 303
    page = client.get(f"/tickets?saved={view.id}")
    assert shown(page.text, subjects) == {"X低"} and "甲市低" in page.text
    r = post(client, f"/tickets/views/{view.id}/delete")
    assert r.status_code == 303
    assert client.get(f"/tickets?saved={view.id}").status_code == 404


def test_the_filter_bar_takes_several_values_and_saves_them(client, db):
    org = build_org(db, roles=("supervisor",))
    x = make_customer(db, org.county_x)
    for subject, priority in (("X紧急", "urgent"), ("X高", "high"), ("X低", "low")):
        open_ticket(db, x, subject, priority)
    subjects = ("X紧急", "X高", "X低")
    signed_in(client, "m-city-a")
    page = client.get("/tickets?view=unit&priority=urgent&priority=high")
    assert shown(page.text, subjects) == {"X紧急", "X高"}
    for value in ("urgent", "high"):
        assert f'name="priority" value="{value}" checked' in page.text
    assert 'name="priority" value="low" checked' not in page.text
    # Tiers are codes, shown alike (a tiering label once made "B" read "B 类" here).
    for tier in "ABC":
        assert f'name="tier" value="{tier}"> <span>{tier}</span>' in page.text
    frag = client.get(
        "/tickets?view=unit&priority=&priority=low&priority=urgent",
        headers={**HX, "HX-Target": "results"},
    )
    assert "<html" not in frag.text and shown(frag.text, subjects) == {"X紧急", "X低"}
    # The save form carries every value; the view stores them as a list.
    assert '<input type="hidden" name="priority" value="low">' in frag.text
    r = post(
        client,
        "/tickets/views",
        {"name": "紧急和低", "priority": ["", "urgent", "low"], "state": ["new", "open"]},
    )
    assert r.status_code == 303, r.text
    view = db.scalars(select(TicketView).where(TicketView.name == "紧急和低")).one()
    assert view.filters["priority"] == ["urgent", "low"]
    assert view.filters["state"] == ["new", "open"]
    page = client.get(f"/tickets?saved={view.id}")
    assert shown(page.text, subjects) == {"X紧急", "X低"}
    assert 'name="state" value="new" checked' in page.text
    # Untick everything (the blank value still says "priority given"): every priority.
    page = client.get(f"/tickets?saved={view.id}&priority=")
    assert shown(page.text, subjects) == set(subjects)
    # A view saved with one value per filter (before several were possible) still opens.
    view.filters = {"state": "open_states", "priority": "high", "assignee": "anyone"}
    db.commit()
    page = client.get(f"/tickets?saved={view.id}")
    assert page.status_code == 200
    assert shown(page.text, subjects) == {"X高"}
    assert 'name="priority" value="high" checked' in page.text
    # Nothing unknown gets through the form: unknown values are dropped.
    page = client.get("/tickets?view=unit&priority=someday&tier=Z")
    assert page.status_code == 200 and shown(page.text, subjects) == set(subjects)


def _fields_and_tickets(client, db, org):
    admin = org.headers["admin"]
    for body in (
        {"key": "amount", "label_zh": "金额", "label_en": "Amount", "type": "number"},
        {
            "key": "fault_kind",
            "label_zh": "故障类型",
            "label_en": "Kind of fault",
            "type": "choice",
            "category_code": "fault_repair",
            "choices": [
                {"value": "line", "label_zh": "线路", "label_en": "Line"},
                {"value": "power", "label_zh": "电源", "label_en": "Power"},
            ],
        },
        {
            "key": "visit_on",
            "label_zh": "上门日期",
            "label_en": "Visit on",
            "type": "date",
            "category_code": "installation",
        },
    ):
        assert client.post("/api/v1/ticket-fields", headers=admin, json=body).status_code == 201
    x = make_customer(db, org.county_x)
    for subject, category, tags, custom in (
        ("大额线路", "fault_repair", ["vip"], {"amount": 500, "fault_kind": "line"}),
        ("小额电源", "fault_repair", ["夜间"], {"amount": 20, "fault_kind": "power"}),
        ("装机", "installation", ["vip"], {"visit_on": "2026-12-01"}),
    ):
        data = TicketCreate(
            customer_id=x.id,
            category_code=category,
            subject=subject,
            tags=tags,
            custom_fields=custom,
        )
        tickets.open_ticket(db, SYSTEM, data, channel="phone")
    db.commit()
    return ("大额线路", "小额电源", "装机")


def test_tag_and_custom_field_filters_in_the_bar(client, db):
    org = build_org(db, roles=("supervisor",))
    subjects = _fields_and_tickets(client, db, org)
    signed_in(client, "m-city-a")
    page = client.get("/tickets?view=unit&tag=VIP")
    assert shown(page.text, subjects) == {"大额线路", "装机"}
    assert 'name="tag" value="vip"' in page.text
    # The fields offered follow the categories ticked (their own and every category's).
    page = client.get("/tickets?view=unit&category=fault_repair")
    options = re.search(r'id="f-filter-ff_key".*?</select>', page.text, re.S).group(0)
    assert 'value="amount"' in options and 'value="fault_kind"' in options
    assert 'value="visit_on"' not in options
    page = client.get("/tickets?view=unit")
    options = re.search(r'id="f-filter-ff_key".*?</select>', page.text, re.S).group(0)
    assert 'value="visit_on"' in options  # no category: every field
    # Choosing a field (HTMX) brings a value input typed like it.
    frag = client.get(
        "/tickets?view=unit&category=fault_repair&ff_key=fault_kind",
        headers={**HX, "HX-Target": "field_filter"},
    )
    assert frag.text.lstrip().startswith('<div id="field_filter"')
    assert '<option value="power"' in frag.text and "电源" in frag.text
    assert 'name="ff_op"' in frag.text and 'type="hidden" name="ff_op"' in frag.text
    frag = client.get(
        "/tickets?view=unit&ff_key=amount", headers={**HX, "HX-Target": "field_filter"}
    )
    assert 'type="number"' in frag.text and '<option value="&gt;=">' in frag.text
    frag = client.get(
        "/tickets?view=unit&ff_key=visit_on", headers={**HX, "HX-Target": "field_filter"}
    )
    assert 'type="date"' in frag.text
    # Adding one: the list narrows, the filter shows as a chip and goes into the save form.
    page = client.get("/tickets?view=unit&ff_key=amount&ff_op=%3E%3D&ff_value=100")
    assert shown(page.text, subjects) == {"大额线路"}
    assert 'name="field" value="amount&gt;=100" checked> 金额 ≥ 100' in page.text
    assert '<input type="hidden" name="field" value="amount&gt;=100">' in page.text
    page = client.get("/tickets?view=unit&field=amount%3E%3D100&field=fault_kind%3Dline")
    assert shown(page.text, subjects) == {"大额线路"} and "故障类型 = 线路" in page.text
    # A bad value is left out, saying why; the rest of the filters hold.
    page = client.get("/tickets?view=unit&tag=vip&ff_key=amount&ff_value=lots")
    assert page.status_code == 200 and 'id="filter-errors"' in page.text
    assert shown(page.text, subjects) == {"大额线路", "装机"}
    page = client.get("/tickets?view=unit&tag=a%3Bb")
    assert 'id="filter-errors"' in page.text and shown(page.text, subjects) == set(subjects)
    # A bad tag beside a good field filter being added: the field filter still becomes a
    # chip, and its value input is empty again.
    page = client.get("/tickets?view=unit&tag=a%3Bb&ff_key=amount&ff_op=%3C%3D&ff_value=50")
    assert shown(page.text, subjects) == {"小额电源"}
    assert 'name="field" value="amount&lt;=50" checked' in page.text
    assert re.search(
        r'id="f-filter-ff_value" name="ff_value" type="number" step="any" value=""', page.text
    )
    # Saved with the view, and shown again when it is chosen.
    r = post(
        client,
        "/tickets/views",
        {"name": "VIP 故障", "tag": "vip", "field": ["", "fault_kind=line"], "assignee": "anyone"},
    )
    assert r.status_code == 303, r.text
    view = db.scalars(select(TicketView).where(TicketView.name == "VIP 故障")).one()
    assert view.filters["tag"] == "vip" and view.filters["field"] == ["fault_kind=line"]
    page = client.get(f"/tickets?saved={view.id}")
    assert shown(page.text, subjects) == {"大额线路"}
    assert 'name="field" value="fault_kind=line" checked' in page.text
    # Unticking the chip (the blank value stays): the view's field filter is off.
    page = client.get(f"/tickets?saved={view.id}&field=")
    assert shown(page.text, subjects) == {"大额线路", "装机"}
    # A forged bad filter in the save form is refused, naming it; nothing saved.
    r = post(client, "/tickets/views", {"name": "坏", "field": "amount>=lots"})
    assert r.status_code == 422
    assert db.scalars(select(TicketView).where(TicketView.name == "坏")).first() is None


def test_a_shared_view_never_widens_what_a_member_sees(client, db):
    org = build_org(db, roles=("supervisor",))
    agent = make_staff(db, org.county_x, username="agent-x")
    for key in ("county_x", "county_y", "county_z", "province"):
        open_ticket(db, make_customer(db, org.units[key]), f"单-{key}")
    subjects = [f"单-{k}" for k in ("county_x", "county_y", "county_z", "province")]
    signed_in(client, "m-province")
    r = post(
        client,
        "/tickets/views",
        {
            "name": "全省全部",
            "unit_id": str(org.province.id),
            "assignee": "anyone",
            "state": "any",
        },
    )
    assert r.status_code == 303
    view = db.scalars(select(TicketView).where(TicketView.name == "全省全部")).one()
    assert view.unit_id == org.province.id
    assert shown(client.get(f"/tickets?saved={view.id}").text, subjects) == set(subjects)
    client.cookies.clear()
    signed_in(client, agent.username)
    page = client.get("/tickets")
    assert 'id="shared-views"' in page.text and "全省全部" in page.text
    page = client.get(f"/tickets?saved={view.id}")
    assert page.status_code == 200
    assert shown(page.text, subjects) == {"单-county_x"}
    assert "Update this view" not in page.text and "更新此视图" not in page.text
    # A plain agent may not share, nor change the shared view.
    r = post(
        client,
        "/tickets/views",
        {"name": "我要共享", "unit_id": str(org.county_x.id), "assignee": "anyone"},
    )
    assert r.status_code == 403 and "我要共享" in r.text
    r = post(client, f"/tickets/views/{view.id}", {"version": "1", "name": "改"})
    assert r.status_code == 403
    # Someone's personal view is nobody else's business.
    client.cookies.clear()
    signed_in(client, "m-county-z")
    r = post(client, "/tickets/views", {"name": "Z的", "assignee": "me"})
    z_view = db.scalars(select(TicketView).where(TicketView.name == "Z的")).one()
    client.cookies.clear()
    signed_in(client, agent.username)
    assert client.get(f"/tickets?saved={z_view.id}").status_code == 404
    assert post(client, f"/tickets/views/{z_view.id}/delete").status_code == 404


def _picks(tickets_):
    return [f"{t.id}:{t.version}" for t in tickets_]


def test_bulk_assign_writes_each_tickets_event_and_audit(client, db):
    org = build_org(db, roles=("supervisor",))
    customer = make_customer(db, org.county_x)
    ts = [open_ticket(db, customer, f"批量{i}") for i in range(3)]
    assert {t.assignee_id for t in ts} == {None}
    agent = make_staff(db, org.county_x, username="agent-x", display_name="张三")
    versions = {t.id: t.version for t in ts}
    signed_in(client, "m-city-a")
    r = post(
        client,
        "/tickets/bulk",
        {"t": _picks(ts), "action": "assign", "assignee_id": str(agent.id), "reason": "排班"},
    )
    assert r.status_code == 303, r.text
    db.expire_all()
    for t in ts:
        row = db.get(Ticket, t.id)
        assert row.assignee_id == agent.id and row.version == versions[t.id] + 1
    audits = db.scalars(select(AuditEntry).where(AuditEntry.action == "ticket.assign")).all()
    assert sorted(int(a.object_id) for a in audits) == sorted(t.id for t in ts)
    events = db.scalars(
        select(TicketEvent).where(TicketEvent.kind == "assign", TicketEvent.actor == "m-city-a")
    ).all()
    assert len(events) == 3 and all(e.data["reason"] == "排班" for e in events)


def test_bulk_is_all_or_nothing_with_a_report_per_ticket(client, db):
    org = build_org(db, roles=("supervisor",))
    customer = make_customer(db, org.county_x)
    good, closed, stale = (open_ticket(db, customer, f"单{i}") for i in range(3))
    hidden = open_ticket(db, make_customer(db, org.county_z), "别处的单")
    for t, to in ((closed, "resolved"), (closed, "closed")):
        tickets.update_ticket(db, SYSTEM, t.id, TicketUpdate(version=t.version, state=to))
        db.commit()
    signed_in(client, "m-city-a")
    picks = [f"{good.id}:{good.version}", f"{closed.id}:{closed.version}"]
    back = "/tickets?view=unit&state=any"
    r = post(
        client, "/tickets/bulk", {"t": picks, "action": "state", "state": "pending", "back": back}
    )
    assert r.status_code == 422
    assert f'name="back" value="{back.replace("&", "&amp;")}"' in r.text
    report = re.search(r'id="bulk-report".*?</div>', r.text, re.S).group(0)
    assert closed.number in report and good.number not in report
    assert "1" in report and "2" in report  # one of two
    assert f'value="{good.id}:{good.version}" form="bulk" data-pick checked' in r.text
    db.expire_all()
    assert db.get(Ticket, good.id).state == "new"  # nothing changed
    # A stale version: 409, naming the ticket; an invisible one: "no such ticket", by id.
    picks = [f"{stale.id}:{stale.version - 1 or 99}", f"{hidden.id}:1", f"{good.id}:{good.version}"]
    r = post(client, "/tickets/bulk", {"t": picks, "action": "state", "state": "pending"})
    assert r.status_code == 409
    report = re.search(r'id="bulk-report".*?</div>', r.text, re.S).group(0)
    assert stale.number in report and f"#{hidden.id}" in report and hidden.number not in report
    db.expire_all()
    assert db.get(Ticket, good.id).state == "new" and db.get(Ticket, stale.id).state == "new"
    # Nothing ticked, or no person chosen: an inline message, nothing else.
    r = post(client, "/tickets/bulk", {"action": "assign"})
    assert r.status_code == 422 and 'id="bulk-report"' in r.text
    r = post(client, "/tickets/bulk", {"t": [f"{good.id}:{good.version}"], "action": "assign"})
    assert r.status_code == 422
    assert db.scalars(select(AuditEntry).where(AuditEntry.action == "ticket.state")).all()
    state_audits = db.scalars(
        select(AuditEntry.object_id).where(AuditEntry.action == "ticket.state")
    ).all()
    assert str(good.id) not in state_audits


def test_bulk_transfer_from_the_bulk_bar(client, db):
    org = build_org(db, roles=("supervisor",))
    agent_y = make_staff(db, org.county_y, username="agent-y", display_name="李四")
    customer = make_customer(db, org.county_x)
    a, b = open_ticket(db, customer, "转甲"), open_ticket(db, customer, "转乙")
    hidden = open_ticket(db, make_customer(db, org.county_z), "别处的单")
    signed_in(client, "m-city-a")
    page = client.get("/tickets?view=unit")
    assert 'id="f-bulk-unit_id"' in page.text and 'value="transfer"' in page.text
    base = {"action": "transfer", "unit_id": str(org.county_y.id)}
    # No reason: refused whole, the reason named; nothing moved.
    r = post(client, "/tickets/bulk", {**base, "t": _picks([a, b]), "reason": ""})
    assert r.status_code == 422
    assert re.search(r'id="f-bulk-reason"[^>]*aria-invalid="true"', r.text)
    # One ticket out of scope: refused whole, that one named by id only.
    r = post(client, "/tickets/bulk", {**base, "t": _picks([a, hidden]), "reason": "上门"})
    assert r.status_code == 422
    report = re.search(r'id="bulk-report".*?</div>', r.text, re.S).group(0)
    assert f"#{hidden.id}" in report and hidden.number not in report
    db.expire_all()
    assert {db.get(Ticket, t.id).handling_unit_id for t in (a, b)} == {org.county_x.id}
    r = post(client, "/tickets/bulk", {**base, "t": _picks([a, b]), "reason": "Y县上门"})
    assert r.status_code == 303, r.text
    db.expire_all()
    for t in (a, b):
        row = db.get(Ticket, t.id)
        assert row.handling_unit_id == org.county_y.id and row.assignee_id == agent_y.id
    audits = db.scalars(select(AuditEntry).where(AuditEntry.action == "ticket.transfer")).all()
    assert sorted(int(x.object_id) for x in audits) == sorted([a.id, b.id])


def test_bulk_api_reports_fields_and_changes_nothing(client, db):
    org = build_org(db, roles=("supervisor",))
    customer = make_customer(db, org.county_x)
    a, b = open_ticket(db, customer, "甲"), open_ticket(db, customer, "乙")
    hidden = open_ticket(db, make_customer(db, org.city_b), "乙市的")
    h = org.headers["county_x"]
    body = {
        "action": "state",
        "state": "on_hold",
        "tickets": [
            {"id": a.id, "version": a.version},
            {"id": hidden.id, "version": 1},
            {"id": b.id, "version": b.version + 5},
        ],
    }
    r = client.post("/api/v1/tickets/bulk", headers=h, json=body)
    assert r.status_code == 409, r.text
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"tickets.1.id", "tickets.2.version"}
    assert r.headers["content-type"].startswith("application/problem+json")
    db.expire_all()
    assert db.get(Ticket, a.id).state == "new"
    body["tickets"] = [{"id": a.id, "version": a.version}, {"id": b.id, "version": b.version}]
    r = client.post("/api/v1/tickets/bulk", headers=h, json=body)
    assert r.status_code == 200, r.text
    assert [t["state"] for t in r.json()["items"]] == ["on_hold", "on_hold"]
    body["state"] = "new"
    body["tickets"] = [{"id": a.id, "version": a.version + 1}]
    r = client.post("/api/v1/tickets/bulk", headers=h, json=body)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "tickets.0.state"


# --- standard phrases and the customer context on the ticket page ----------------------------


def test_phrase_library_pages_and_insertion_without_javascript(client, db):
    org = build_org(db, roles=("supervisor",))
    agent = make_staff(db, org.county_x, username="agent-x", display_name="王五")
    customer = make_customer(db, org.county_x, "甲公司")
    t = open_ticket(db, customer, "专线中断")
    hidden = open_ticket(db, make_customer(db, org.county_z), "别处")
    signed_in(client, agent.username)
    page = client.get("/phrases")
    assert page.status_code == 200 and "{ticket_number}" in page.text
    r = post(client, "/phrases", {"kind": "personal", "title": "致歉", "body": "您好 {客户}"})
    assert r.status_code == 422 and "{客户}" in r.text and 'id="f-phrase-body-error"' in r.text
    r = post(client, "/phrases", {"kind": "unit", "title": "共享", "body": "x"})
    assert r.status_code == 403
    r = post(
        client,
        "/phrases",
        {
            "kind": "personal",
            "title": "致歉",
            "body": "{customer}您好，{agent}为您处理{ticket_number}。",
        },
    )
    assert r.status_code == 303
    page = client.get(f"/tickets/{t.id}")
    pid = re.search(r'<option value="(\d+)" title="[^"]*">致歉</option>', page.text).group(1)
    filled = f"甲公司您好，王五为您处理{t.number}。"
    r = client.get(f"/tickets/{t.id}/phrases/{pid}")
    assert r.status_code == 200 and r.text == filled
    page = client.get(f"/tickets/{t.id}?phrase={pid}")
    assert f">{filled}</textarea>" in page.text
    assert client.get(f"/tickets/{hidden.id}/phrases/{pid}").status_code == 404
    # Edit and delete from the library.
    r = post(client, f"/phrases/{pid}", {"version": "1", "title": "致歉", "body": "{nope}"})
    assert r.status_code == 422
    r = post(client, f"/phrases/{pid}", {"version": "1", "title": "道歉", "body": "抱歉"})
    assert r.status_code == 303 and "道歉" in client.get("/phrases").text
    assert post(client, f"/phrases/{pid}/delete").status_code == 303
    assert client.get(f"/tickets/{t.id}/phrases/{pid}").status_code == 404


def test_customer_context_beside_the_ticket(client, db):
    org = build_org(db, roles=("supervisor",))
    manager = make_staff(db, org.county_x, username="am-x", display_name="赵经理")
    customer = make_customer(db, org.county_x, "乙公司")
    customer.tier, customer.service_level = "A", "4A"
    db.commit()
    customer.account_manager_id = manager.id
    db.commit()
    t = open_ticket(db, customer, "本单")
    sibling = open_ticket(db, customer, "另一单")
    # The same customer's ticket handled where county X's staff cannot see it.
    far = open_ticket(db, customer, "远处的单")
    far.owning_unit_id = far.handling_unit_id = org.county_z.id
    db.commit()
    signed_in(client, "m-county-x")
    page = client.get(f"/tickets/{t.id}")
    panel = re.search(r'<section class="panel cc" id="context".*?</section>', page.text, re.S)
    html = panel.group(0)
    assert 'href="/customers/' + str(customer.id) + '"' in html
    assert '<span class="tag tag-level">A</span>' in html and "4A" in html
    assert "赵经理" in html
    assert re.search(r'id="cc-satisfaction">—<', html)  # never surveyed
    assert "首次响应" in html and 'class="is-current-row"' in html  # targets, this priority
    assert f"{sibling.number}" in html and "另一单" in html
    assert "远处的单" not in html and "(1)" in html  # only what this viewer may see


def test_context_shows_the_last_satisfaction(client, db):
    from kefu.surveys import service as surveys
    from kefu.surveys.schemas import AnswerIn, InvitationIn, Scores

    org = build_org(db, roles=("supervisor",))
    customer = make_customer(db, org.county_x, "丙公司")
    done = open_ticket(db, customer, "已解决的单")
    t = open_ticket(db, customer, "新单")
    tickets.update_ticket(db, SYSTEM, done.id, TicketUpdate(version=done.version, state="resolved"))
    _invitation, token = surveys.invite(db, SYSTEM, InvitationIn(ticket_id=done.id))
    five = Scores(reliability=5, responsiveness=5, assurance=5, empathy=5, tangibles=5)
    six = Scores(reliability=6, responsiveness=6, assurance=6, empathy=6, tangibles=6)
    answer = AnswerIn(expectations=five, perceptions=six, csat=4, nps=9)
    surveys.submit_link(db, token, answer, "127.0.0.1")
    db.commit()
    signed_in(client, "m-county-x")
    page = client.get(f"/tickets/{t.id}").text
    shown = re.search(r'id="cc-satisfaction">(.*?)</dd>', page, re.S).group(1)
    assert "<b>120.0</b>" in shown and "4/5" in shown and "9" in shown


def test_phrase_pages_answer_404_out_of_scope(client, db):
    org = build_org(db, roles=("supervisor",))
    signed_in(client, "m-county-z")
    r = post(
        client,
        "/phrases",
        {"kind": "unit", "unit_id": str(org.county_z.id), "title": "Z", "body": "z"},
    )
    assert r.status_code == 303
    pid = re.search(r'href="/phrases/(\d+)"', client.get("/phrases").text).group(1)
    client.cookies.clear()
    signed_in(client, "m-county-x")
    assert client.get(f"/phrases/{pid}").status_code == 404
    r = post(client, f"/phrases/{pid}", {"version": "1", "title": "改", "body": "改"})
    assert r.status_code == 404
    assert post(client, f"/phrases/{pid}/delete").status_code == 404
    assert f'id="phrase-{pid}"' not in client.get("/phrases").text
    # The city above sees it (to manage) and may edit it.
    client.cookies.clear()
    signed_in(client, "m-city-b")
    assert client.get(f"/phrases/{pid}").status_code == 200
