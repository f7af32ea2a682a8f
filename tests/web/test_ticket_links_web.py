"""The ticket page's collaborators and merge (page and HTMX), and their scope."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from kefu import clock
from kefu.scope import SYSTEM
from kefu.tickets import service as tickets
from kefu.tickets.models import Ticket, TicketCollaborator
from kefu.tickets.schemas import MessageIn, TicketCreate
from tests.factories import make_customer, make_staff, make_unit
from tests.scope_matrix import build_org
from tests.web.helpers import HX, field_error, post, signed_in

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def tuesday_morning():
    clock.set_now(lambda: datetime(2026, 11, 24, 10, tzinfo=SH).astimezone(UTC))


def open_ticket(db, customer, subject="专线中断"):
    data = TicketCreate(customer_id=customer.id, category_code="technical_support", subject=subject)
    t = tickets.open_ticket(db, SYSTEM, data, channel="phone")
    db.commit()
    return t


def test_add_and_remove_a_collaborator(client, db):
    unit = make_unit(db, "西湖区支局", region_code="330106")
    agent = make_staff(db, unit, roles=("agent",))
    expert = make_staff(db, unit, roles=("agent",), display_name="李专家")
    t = open_ticket(db, make_customer(db, unit))
    signed_in(client, agent.username)
    page = client.get(f"/tickets/{t.id}")
    assert 'id="collaborators"' in page.text and "还没有协作人" in page.text
    bad = post(client, f"/tickets/{t.id}/collaborators", {"staff_id": ""}, headers=HX)
    assert bad.status_code == 422 and field_error(bad.text, "f-collab-staff_id") == "请选择人员。"
    r = post(client, f"/tickets/{t.id}/collaborators", {"staff_id": str(expert.id)})
    assert r.status_code == 303 and "notice=collaborator" in r.headers["location"]
    page = client.get(r.headers["location"]).text
    assert "已添加协作人，并已通知对方。" in page
    assert "添加了协作人 李专家" in page
    again = post(client, f"/tickets/{t.id}/collaborators", {"staff_id": str(expert.id)})
    assert again.status_code == 422
    assert field_error(again.text, "f-collab-staff_id") == "李专家已经是本工单的协作人。"
    r = post(client, f"/tickets/{t.id}/collaborators/{expert.id}/remove")
    assert r.status_code == 303
    assert db.query(TicketCollaborator).count() == 0
    assert "移除了协作人 李专家" in client.get(f"/tickets/{t.id}").text


def test_merge_from_the_page(client, db):
    unit = make_unit(db, "西湖区支局", region_code="330106")
    agent = make_staff(db, unit, roles=("agent",))
    customer = make_customer(db, unit)
    target = open_ticket(db, customer, "专线中断")
    source = open_ticket(db, customer, "又打来了：专线中断")
    tickets.add_message(db, SYSTEM, source.id, MessageIn(body="客户第二次来电"))
    db.commit()
    elsewhere = open_ticket(db, make_customer(db, unit), "别家的工单")
    signed_in(client, agent.username)
    page = client.get(f"/tickets/{source.id}").text
    assert 'id="merge"' in page and target.number in page
    assert elsewhere.number not in page  # only the same customer's open tickets are offered
    db.refresh(source)
    stale = post(
        client,
        f"/tickets/{source.id}/merge",
        {"into_id": str(target.id), "version": str(source.version - 1)},
    )
    assert stale.status_code == 409
    across = post(
        client,
        f"/tickets/{source.id}/merge",
        {"into_id": str(elsewhere.id), "version": str(source.version)},
        headers=HX,
    )
    assert across.status_code == 422
    assert field_error(across.text, "f-merge-into_id") == "只能合并到同一客户的工单。"
    r = post(
        client,
        f"/tickets/{source.id}/merge",
        {"into_id": str(target.id), "version": str(source.version), "reason": "重复"},
    )
    assert r.status_code == 303 and r.headers["location"].startswith(f"/tickets/{target.id}")
    page = client.get(r.headers["location"]).text
    assert "已合并：重复工单已关闭" in page
    assert "已并入本工单" in page and source.number in page
    assert "客户第二次来电" in page and f"来自 {source.number}" in page
    src = client.get(f"/tickets/{source.id}").text
    assert 'id="merged-into"' in src and target.number in src
    assert 'id="merge"' not in src  # closed: nothing more to merge
    db.expire_all()
    assert db.get(Ticket, source.id).state == "closed"


def test_out_of_scope_is_404(client, db):
    org = build_org(db, roles=("agent",))
    customer = make_customer(db, org.county_y)
    theirs = open_ticket(db, customer)
    other = open_ticket(db, customer, "另一个")
    signed_in(client, "m-county-x")
    me = org.people["county_x"].id
    assert (
        post(client, f"/tickets/{theirs.id}/collaborators", {"staff_id": str(me)}).status_code
        == 404
    )
    assert post(client, f"/tickets/{theirs.id}/collaborators/{me}/remove").status_code == 404
    assert (
        post(
            client, f"/tickets/{theirs.id}/merge", {"into_id": str(other.id), "version": "1"}
        ).status_code
        == 404
    )
    db.expire_all()
    assert db.query(TicketCollaborator).count() == 0
    assert db.get(Ticket, theirs.id).state == "new"


def test_tags_on_the_page_and_at_intake(client, db):
    unit = make_unit(db, "西湖区支局", region_code="330106")
    agent = make_staff(db, unit, roles=("agent",))
    customer = make_customer(db, unit)
    t = open_ticket(db, customer)
    first_version = t.version
    signed_in(client, agent.username)
    page = client.get(f"/tickets/{t.id}").text
    assert 'id="tags"' in page and "没有标签" in page
    r = post(
        client, f"/tickets/{t.id}/tags", {"version": str(t.version), "tags": "VIP，光纤、 专线"}
    )
    assert r.status_code == 303
    db.expire_all()
    assert db.get(Ticket, t.id).tags == ["vip", "专线", "光纤"]
    page = client.get(f"/tickets/{t.id}").text
    assert 'class="tag tag-word">vip<' in page and "修改了标签：— → vip, 专线, 光纤" in page
    bad = post(
        client,
        f"/tickets/{t.id}/tags",
        {"version": str(db.get(Ticket, t.id).version), "tags": "<i>x</i>"},
        headers=HX,
    )
    assert bad.status_code == 422 and field_error(bad.text, "f-tags-tags")
    assert 'value="&lt;i&gt;x&lt;/i&gt;"' in bad.text
    stale = post(client, f"/tickets/{t.id}/tags", {"version": str(first_version), "tags": "a"})
    assert stale.status_code == 409
    r = post(
        client,
        "/tickets/new",
        {
            "customer_id": str(customer.id),
            "channel": "phone",
            "category_code": "other",
            "priority": "normal",
            "subject": "带标签",
            "tags": "重要, 回访",
        },
    )
    assert r.status_code == 303
    made = db.scalars(select(Ticket).where(Ticket.subject == "带标签")).one()
    assert made.tags == ["回访", "重要"]
