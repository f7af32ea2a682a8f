"""The agent console: queues, the ticket page and its forms, agent intake (page and HTMX)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from kefu import clock
from kefu.customers import service as customer_service
from kefu.customers.schemas import ContactCreate
from kefu.scope import SYSTEM
from kefu.tickets import service as tickets
from kefu.tickets.models import Ticket, TicketAttachment, TicketEvent
from kefu.tickets.schemas import TicketCreate
from kefu.web.tickets import Timer, clock_text
from tests.factories import make_customer, make_staff, make_unit
from tests.scope_matrix import build_org
from tests.web.helpers import HX, field_error, post, signed_in

SH = ZoneInfo("Asia/Shanghai")
TUESDAY_10 = datetime(2026, 11, 24, 10, tzinfo=SH)
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n"


@pytest.fixture(autouse=True)
def tuesday_morning():
    clock.set_now(lambda: TUESDAY_10.astimezone(UTC))


def open_ticket(db, customer, subject="专线中断", **kw):
    data = TicketCreate(
        customer_id=customer.id,
        category_code=kw.pop("category_code", "technical_support"),
        subject=subject,
        priority=kw.pop("priority", "high"),
        **kw,
    )
    ticket = tickets.open_ticket(db, SYSTEM, data, channel="phone")
    db.commit()
    return ticket


def events_of(db, ticket_id):
    return db.scalar(select(func.count()).where(TicketEvent.ticket_id == ticket_id))


def _one_unit(client, db, roles=("agent",)):
    unit = make_unit(db, "西湖区支局", region_code="330106")
    agent = make_staff(db, unit, roles=roles)
    customer = make_customer(db, unit, "杭州西湖电子有限公司")
    db.commit()
    signed_in(client, agent.username)
    return unit, agent, customer


# --- SLA timer maths ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left_minutes", "breached", "tone"),
    [
        (80, False, "green"),
        (50, False, "amber"),
        (25, False, "amber"),
        (20, False, "red"),
        (-1, False, "breached"),
        (70, True, "breached"),
    ],
)
def test_timer_tone_follows_the_remaining_share(left_minutes, breached, tone):
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    due = start + timedelta(minutes=100)
    t = Timer("resolution", start, due, due - timedelta(minutes=left_minutes), breached, False)
    assert t.tone == tone


def test_clock_text():
    assert clock_text(3 * 3600 + 5 * 60 + 59) == "3:05"
    assert clock_text(-(61 * 60)) == "−1:01"
    assert clock_text(52 * 3600) == "52:00"


# --- queues -------------------------------------------------------------------------------------


def test_county_queue_lists_exactly_its_subtree(client, db):
    org = build_org(db)
    by_unit = {}
    for key, unit in org.units.items():
        by_unit[key] = open_ticket(db, make_customer(db, unit), subject=f"工单-{key}")
    signed_in(client, "m-county-x")
    page = client.get("/tickets?view=unit")
    assert page.status_code == 200 and "<html" in page.text
    shown = {key for key in by_unit if f"工单-{key}<" in page.text}
    assert shown == {"county_x"}
    fragment = client.get("/tickets?view=unit", headers={**HX, "HX-Target": "results"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "工单-county_x<" in fragment.text and "工单-county_y<" not in fragment.text
    # The manager of city A sees both of its counties and itself, nothing of city B.
    client.cookies.clear()
    signed_in(client, "m-city-a")
    page = client.get("/tickets?view=unit")
    shown = {key for key in by_unit if f"工单-{key}<" in page.text}
    assert shown == {"city_a", "county_x", "county_y"}


def test_my_queue_sorted_by_due_with_live_timers_and_filters(client, db):
    _unit, agent, customer = _one_unit(client, db)
    low = open_ticket(db, customer, "低优先级", priority="low")
    urgent = open_ticket(db, customer, "紧急故障", priority="urgent")
    assert low.assignee_id == agent.id == urgent.assignee_id
    page = client.get("/tickets")
    assert page.status_code == 200
    assert page.text.index("紧急故障") < page.text.index("低优先级")  # nearest due first
    assert f'data-due="{urgent.resolution_due.isoformat()}"' in page.text
    assert 'class="sla sla-green"' in page.text  # just opened: all of the target left
    assert "首次响应" in page.text and urgent.number in page.text
    filtered = client.get("/tickets?priority=low", headers={**HX, "HX-Target": "results"})
    assert "低优先级" in filtered.text and "紧急故障" not in filtered.text
    assert "<html" not in filtered.text
    # Time passes: 90 % of the first response target used → red; past it → breached.
    total = urgent.first_response_due - urgent.created_at
    clock.set_now(lambda: urgent.created_at + total * 0.9)
    assert "sla sla-red" in client.get(f"/tickets/{urgent.id}").text
    clock.set_now(lambda: urgent.first_response_due + timedelta(minutes=5))
    late = client.get(f"/tickets/{urgent.id}").text
    assert "sla sla-breached" in late and "−0:05" in late


def test_queue_pages_by_cursor(client, db):
    _unit, _agent, customer = _one_unit(client, db)
    for i in range(27):
        open_ticket(db, customer, f"批量工单{i:02d}")
    first = client.get("/tickets")
    assert first.text.count('href="/tickets/') - first.text.count('href="/tickets/new') == 25
    assert "cursor=" in first.text and 'rel="next"' in first.text
    url = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = client.get(url.replace("&amp;", "&"), headers={**HX, "HX-Target": "results"})
    assert second.status_code == 200
    assert second.text.count('href="/tickets/') - second.text.count('href="/tickets/new') == 2


# --- the ticket page ------------------------------------------------------------------------------


def test_ticket_page_full_and_fragment_with_timeline(client, db):
    _unit, _agent, customer = _one_unit(client, db)
    t = open_ticket(db, customer, description="<p>线路<b>中断</b><script>x()</script></p>")
    tickets.event(db, t, "sla", "system", target="first_response", stage="breach")
    db.commit()
    page = client.get(f"/tickets/{t.id}")
    assert page.status_code == 200 and "<html" in page.text
    assert t.number in page.text and "杭州西湖电子有限公司" in page.text
    assert "<b>中断</b>" in page.text and "<script>x()" not in page.text  # sanitised, kept
    assert "首次响应已超时" in page.text  # the SLA event, translated
    assert "按负载最少规则分配给" in page.text  # the routing rule, translated
    assert 'data-shortcut="r"' in page.text and 'data-shortcut="n"' in page.text
    assert "<kbd>r</kbd>" in page.text
    fragment = client.get(f"/tickets/{t.id}", headers=HX)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert t.number in fragment.text


def test_reply_and_internal_note(client, db):
    _unit, _agent, customer = _one_unit(client, db)
    t = open_ticket(db, customer)
    r = post(client, f"/tickets/{t.id}/messages", {"body": "已派工程师上门", "internal": "0"})
    assert r.status_code == 303 and r.headers["location"] == f"/tickets/{t.id}?notice=replied"
    r = post(client, f"/tickets/{t.id}/messages", {"body": "客户很急", "internal": "1"}, headers=HX)
    assert r.status_code == 200 and r.headers["HX-Redirect"].startswith(f"/tickets/{t.id}")
    db.expire_all()
    ticket = db.get(Ticket, t.id)
    assert ticket.first_response_at is not None and ticket.state == "open"
    kinds = [e.kind for e in db.scalars(select(TicketEvent).where(TicketEvent.ticket_id == t.id))]
    assert kinds.count("reply") == 1 and kinds.count("note") == 1
    page = client.get(f"/tickets/{t.id}?notice=noted").text
    assert "内部备注" in page and 'class="ev ev-note"' in page and "已添加内部备注" in page
    # An empty body: an inline message, nothing written.
    before = events_of(db, t.id)
    bad = post(client, f"/tickets/{t.id}/messages", {"body": "", "internal": "1"}, headers=HX)
    assert bad.status_code == 422 and field_error(bad.text, "f-note-body")
    assert events_of(db, t.id) == before


def test_stale_version_keeps_the_typed_text(client, db):
    _unit, _agent, customer = _one_unit(client, db)
    t = open_ticket(db, customer)
    data = {"version": str(t.version), "state": "pending", "reason": "等客户提供账号"}
    ok = post(client, f"/tickets/{t.id}/state", data)
    assert ok.status_code == 303
    stale = post(
        client, f"/tickets/{t.id}/state", {**data, "state": "resolved", "reason": "我的说明"}
    )
    assert stale.status_code == 409
    assert "该工单已被他人修改，请刷新后重试。" in stale.text  # the translated conflict
    assert "我的说明" in stale.text  # nothing typed is lost
    db.expire_all()
    assert db.get(Ticket, t.id).state == "pending"
    hx = post(client, f"/tickets/{t.id}/state", {**data, "state": "resolved"}, headers=HX)
    assert hx.status_code == 409 and "<html" not in hx.text


def test_forbidden_state_change_is_refused_inline(client, db):
    _unit, _agent, customer = _one_unit(client, db)
    t = open_ticket(db, customer)
    r = post(client, f"/tickets/{t.id}/state", {"version": str(t.version), "state": "closed"})
    assert r.status_code == 422
    assert field_error(r.text, "f-state-state")
    db.expire_all()
    assert db.get(Ticket, t.id).state == "new"


def test_transfer_with_reason(client, db):
    _unit, _agent, customer = _one_unit(client, db)
    other = make_unit(db, "技术支持中心", region_code="330100")
    db.commit()
    t = open_ticket(db, customer)
    short = post(client, f"/tickets/{t.id}/transfer", {"version": "1", "unit_id": str(other.id)})
    assert short.status_code == 422 and field_error(short.text, "f-transfer-reason")
    ok = post(
        client,
        f"/tickets/{t.id}/transfer",
        {"version": str(t.version), "unit_id": str(other.id), "reason": "需要技术支持"},
    )
    assert ok.status_code == 303, ok.text
    db.expire_all()
    assert db.get(Ticket, t.id).handling_unit_id == other.id
    page = client.get(f"/tickets/{t.id}").text
    assert "需要技术支持" in page and "技术支持中心" in page


def test_attachment_upload_and_download(client, db):
    _unit, _agent, customer = _one_unit(client, db)
    t = open_ticket(db, customer)
    r = post(
        client,
        f"/tickets/{t.id}/attachments",
        files={"file": ("故障报告.pdf", PDF, "application/pdf")},
    )
    assert r.status_code == 303, r.text
    row = db.scalars(select(TicketAttachment).where(TicketAttachment.ticket_id == t.id)).one()
    page = client.get(f"/tickets/{t.id}").text
    assert f'href="/tickets/{t.id}/attachments/{row.id}"' in page and "故障报告.pdf" in page
    got = client.get(f"/tickets/{t.id}/attachments/{row.id}")
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"] == "sandbox"
    bad = post(
        client, f"/tickets/{t.id}/attachments", files={"file": ("x.pdf", b"MZ\x90 exe", "x/y")}
    )
    assert bad.status_code == 422 and field_error(bad.text, "f-file-file")
    assert db.scalar(select(func.count()).where(TicketAttachment.ticket_id == t.id)) == 1


def test_another_countys_ticket_answers_404_everywhere(client, db):
    org = build_org(db)
    theirs = open_ticket(db, make_customer(db, org.county_z), subject="Z县的工单")
    att = tickets_attach(db, theirs)
    signed_in(client, "m-county-x")
    before = events_of(db, theirs.id)
    assert client.get(f"/tickets/{theirs.id}").status_code == 404
    assert client.get(f"/tickets/{theirs.id}", headers=HX).status_code == 404
    assert client.get(f"/tickets/{theirs.id}/attachments/{att.id}").status_code == 404
    writes = [
        ("messages", {"body": "偷看", "internal": "1"}),
        ("state", {"version": "1", "state": "open"}),
        ("transfer", {"version": "1", "unit_id": str(org.county_x.id), "reason": "抢单"}),
    ]
    for action, data in writes:
        r = post(client, f"/tickets/{theirs.id}/{action}", data)
        assert r.status_code == 404, action
    r = post(client, f"/tickets/{theirs.id}/attachments", files={"file": ("a.pdf", PDF, "x/y")})
    assert r.status_code == 404
    db.expire_all()
    assert events_of(db, theirs.id) == before
    assert db.get(Ticket, theirs.id).handling_unit_id == org.county_z.id


def tickets_attach(db, ticket):
    from kefu.tickets import attachments

    row = attachments.add_attachment(db, SYSTEM, ticket.id, "报告.pdf", PDF)
    db.commit()
    return row


# --- agent intake -----------------------------------------------------------------------------


def test_customer_search_by_name_and_contact_phone(client, db):
    unit, _agent, customer = _one_unit(client, db)
    customer_service.add_contact(
        db, SYSTEM, customer.id, ContactCreate(name="王经理", phone="13812345678")
    )
    make_customer(db, unit, "宁波港务集团")
    db.commit()
    by_name = client.get("/tickets/new?q=西湖", headers={**HX, "HX-Target": "matches"})
    assert by_name.status_code == 200 and "<html" not in by_name.text
    assert "杭州西湖电子有限公司" in by_name.text and "宁波港务集团" not in by_name.text
    by_phone = client.get("/tickets/new?q=1381234", headers={**HX, "HX-Target": "matches"})
    assert "杭州西湖电子有限公司" in by_phone.text
    page = client.get("/tickets/new?q=西湖")
    assert "<html" in page.text and "杭州西湖电子有限公司" in page.text
    chosen = client.get(
        f"/tickets/new?customer_id={customer.id}", headers={**HX, "HX-Target": "intake"}
    )
    assert "王经理" in chosen.text and "<html" not in chosen.text


def test_new_phone_ticket_and_refusals(client, db):
    unit, _agent, customer = _one_unit(client, db)
    contact = customer_service.add_contact(db, SYSTEM, customer.id, ContactCreate(name="王经理"))
    other = make_customer(db, unit, "别家公司")
    stranger = customer_service.add_contact(db, SYSTEM, other.id, ContactCreate(name="李四"))
    db.commit()
    good = {
        "customer_id": str(customer.id),
        "contact_id": str(contact.id),
        "category_code": "fault_repair",
        "priority": "urgent",
        "subject": "机房断电",
        "description": "客户来电",
        "channel": "walk_in",
        "site_region_code": "",
    }
    cases = [
        ({"subject": "<b>坏</b>"}, "f-new-subject"),
        ({"category_code": "astrology"}, "f-new-category_code"),
        ({"contact_id": str(stranger.id)}, "f-new-contact_id"),
        ({"channel": "api"}, "f-new-channel"),
        ({"site_region_code": "12"}, "f-new-site_region_code"),
        ({"customer_id": ""}, "f-new-customer_id"),
    ]
    count = db.scalar(select(func.count()).select_from(Ticket))
    for change, field_id in cases:
        for headers in ({}, HX):
            r = post(client, "/tickets/new", {**good, **change}, headers=headers)
            assert r.status_code == 422, (change, r.text[:300])
            assert field_error(r.text, field_id), (change, field_id)
            assert ("<html" in r.text) is (not headers)
    assert db.scalar(select(func.count()).select_from(Ticket)) == count
    r = post(client, "/tickets/new", good)
    assert r.status_code == 303
    made = db.scalars(select(Ticket).where(Ticket.subject == "机房断电")).one()
    assert r.headers["location"] == f"/tickets/{made.id}?notice=created"
    assert made.channel == "walk_in" and made.contact_id == contact.id
    assert "工单已创建" in client.get(r.headers["location"]).text


def test_english_labels(client, db):
    _unit, _agent, customer = _one_unit(client, db)
    t = open_ticket(db, customer)
    post(client, "/lang", {"locale": "en", "next": "/"})
    page = client.get(f"/tickets/{t.id}").text
    assert "Reply to the customer" in page and "Internal note" in page
    assert 'class="tag prio prio-high">High</span>' in page and "prio-urgent" not in page
