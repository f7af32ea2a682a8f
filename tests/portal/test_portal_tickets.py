"""The portal's ticket pages: the contact-scope matrix per endpoint, submitting through the
one intake with attachments, the public timeline (internal notes never leak), replies that
reopen, confirming and reopening within the window, and the audit with the contact as actor."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kefu import clock
from kefu.audit.models import AuditEntry
from kefu.scope import SYSTEM
from kefu.tickets import attachments
from kefu.tickets import service as tickets
from kefu.tickets.models import Ticket, TicketAttachment, TicketEvent
from kefu.tickets.schemas import MessageIn
from tests.contact_matrix import (
    build_customers,
    check_contacts,
    portal_login,
    portal_post,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
NOW = datetime(2026, 11, 24, 2, tzinfo=UTC)  # a Tuesday, 10:00 in Shanghai


@pytest.fixture(autouse=True)
def tuesday():
    clock.set_now(lambda: NOW)


def test_contact_scope_matrix(app, db):
    cs = build_customers(db)
    any_ticket = next(iter(cs.tickets))
    tickets.change_state(db, SYSTEM, db.get(Ticket, any_ticket), "resolved")
    db.commit()
    check_contacts(
        lambda: TestClient(app),
        cs,
        writes=(
            ("reply", {"body": "越界回复"}),
            ("confirm", {}),
            ("reopen", {"body": "越界重开"}),
        ),
    )
    # Nothing was written by the refused attempts.
    foreign = db.scalars(select(TicketEvent).where(TicketEvent.body.contains("越界"))).all()
    assert foreign == []


def test_downloads_are_scoped_and_only_shared_files(app, db):
    cs = build_customers(db)
    mine = next(t for t, c in cs.tickets.items() if c.id == cs.stranger.id)
    theirs = next(t for t, c in cs.tickets.items() if c.id == cs.group.id)
    internal = attachments.add_attachment(db, SYSTEM, mine, "内部.png", PNG)
    shared = attachments.add_attachment(db, SYSTEM, mine, "给客户.png", PNG, public=True)
    other = attachments.add_attachment(db, SYSTEM, theirs, "集团.png", PNG, public=True)
    db.commit()
    client = TestClient(app)
    portal_login(client, cs.logins["stranger"])
    page = client.get(f"/portal/tickets/{mine}").text
    assert "给客户.png" in page and "内部.png" not in page
    assert client.get(f"/portal/tickets/{mine}/files/{shared.id}").content == PNG
    assert client.get(f"/portal/tickets/{mine}/files/{internal.id}").status_code == 404
    assert client.get(f"/portal/tickets/{theirs}/files/{other.id}").status_code == 404
    assert client.get(f"/portal/tickets/{mine}/files/{other.id}").status_code == 404


def test_submit_through_the_one_intake_with_attachments(app, db):
    cs = build_customers(db)
    client = TestClient(app)
    portal_login(client, cs.logins["branch_1"])
    form = client.get("/portal/tickets/new")
    assert form.status_code == 200 and 'name="customer_id"' in form.text
    r = portal_post(
        client,
        "/portal/tickets/new",
        {
            "customer_id": str(cs.branch_1.id),
            "category_code": "fault_repair",
            "subject": "打印机不工作",
            "description": "第一行\n<script>alert(1)</script>",
        },
        files=[("files", ("照片.png", PNG, "image/png"))],
    )
    assert r.status_code == 303, r.text
    tid = int(r.headers["location"].split("/")[-1].split("?")[0])
    ticket = db.get(Ticket, tid)
    assert ticket.channel == "portal" and ticket.customer_id == cs.branch_1.id
    assert ticket.contact_id == cs.contacts["branch_1"].id
    assert "<script>" not in ticket.description and "&lt;script&gt;" in ticket.description
    files = db.scalars(select(TicketAttachment).where(TicketAttachment.ticket_id == tid)).all()
    assert [(f.filename, f.public) for f in files] == [("照片.png", True)]
    page = client.get(f"/portal/tickets/{tid}")
    assert "照片.png" in page.text and "打印机不工作" in page.text
    assert "<script>alert" not in page.text
    created = db.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "ticket.create", AuditEntry.object_id == str(tid)
        )
    ).one()
    assert created.actor_contact_id == cs.contacts["branch_1"].id and created.channel == "portal"


def test_a_contact_cannot_submit_for_another_customer(app, db):
    cs = build_customers(db)
    before = db.scalar(select(Ticket.id).order_by(Ticket.id.desc()).limit(1))
    client = TestClient(app)
    portal_login(client, cs.logins["branch_1"])
    for target in (cs.stranger.id, cs.group.id, cs.branch_2.id):
        r = portal_post(
            client,
            "/portal/tickets/new",
            {
                "customer_id": str(target),
                "category_code": "fault_repair",
                "subject": "越权",
                "description": "试试",
            },
        )
        assert r.status_code == 422
    # A group administrator may submit for a branch, and only for the group's customers.
    admin = TestClient(app)
    portal_login(admin, cs.logins["group_admin"])
    assert "矩阵集团二分公司" in admin.get("/portal/tickets/new").text
    r = portal_post(
        admin,
        "/portal/tickets/new",
        {
            "customer_id": str(cs.branch_2.id),
            "category_code": "fault_repair",
            "subject": "为分公司提交",
            "description": "代提交",
        },
    )
    assert r.status_code == 303
    r = portal_post(
        admin,
        "/portal/tickets/new",
        {
            "customer_id": str(cs.stranger.id),
            "category_code": "fault_repair",
            "subject": "越权",
            "description": "试试",
        },
    )
    assert r.status_code == 422
    made = db.scalars(select(Ticket).where(Ticket.id > (before or 0))).all()
    assert [(t.subject, t.customer_id) for t in made] == [("为分公司提交", cs.branch_2.id)]


def test_bad_input_is_refused_and_nothing_is_written(app, db, settings):
    cs = build_customers(db)
    client = TestClient(app)
    portal_login(client, cs.logins["stranger"])
    count = len(db.scalars(select(Ticket.id)).all())
    cases = [
        ({"category_code": "", "subject": "x", "description": "y"}, None),
        ({"category_code": "no_such", "subject": "x", "description": "y"}, None),
        ({"category_code": "fault_repair", "subject": "<b>x</b>", "description": "y"}, None),
        (
            {"category_code": "fault_repair", "subject": "x", "description": "y"},
            ("files", ("假图片.png", b"%PDF-1.4\n" + b"0" * 64, "image/png")),
        ),
    ]
    for data, upload in cases:
        r = portal_post(
            client,
            "/portal/tickets/new",
            {"customer_id": str(cs.stranger.id), **data},
            files=[upload] if upload else None,
        )
        assert r.status_code == 422, data
    assert len(db.scalars(select(Ticket.id)).all()) == count


def test_timeline_shows_the_public_side_only(app, db):
    cs = build_customers(db)
    tid = next(t for t, c in cs.tickets.items() if c.id == cs.stranger.id)
    tickets.add_message(db, SYSTEM, tid, MessageIn(body="内部备注：客户难缠", internal=True))
    tickets.add_message(db, SYSTEM, tid, MessageIn(body="您好，工程师已出发"))
    db.commit()
    client = TestClient(app)
    portal_login(client, cs.logins["stranger"])
    page = client.get(f"/portal/tickets/{tid}").text
    assert "工程师已出发" in page
    assert "客户难缠" not in page and "内部备注" not in page
    assert "system" not in page  # no staff usernames, no routing


def test_reply_reopens_and_confirm_closes(app, db):
    cs = build_customers(db)
    tid = next(t for t, c in cs.tickets.items() if c.id == cs.stranger.id)
    tickets.add_message(db, SYSTEM, tid, MessageIn(body="请提供型号"))
    tickets.change_state(db, SYSTEM, db.get(Ticket, tid), "pending")
    db.commit()
    client = TestClient(app)
    portal_login(client, cs.logins["stranger"])
    r = portal_post(
        client,
        f"/portal/tickets/{tid}/reply",
        {"body": "型号是 X1"},
        files=[("files", ("铭牌.png", PNG, "image/png"))],
    )
    assert r.status_code == 303, r.text
    db.expire_all()
    ticket = db.get(Ticket, tid)
    assert ticket.state == "open" and ticket.next_response_due is not None
    page = client.get(f"/portal/tickets/{tid}").text
    assert "型号是 X1" in page and "铭牌.png" in page
    # Confirming works only once resolved.
    assert portal_post(client, f"/portal/tickets/{tid}/confirm").status_code == 422
    tickets.change_state(db, SYSTEM, ticket, "resolved")
    db.commit()
    assert "您的问题解决了吗" in client.get(f"/portal/tickets/{tid}").text
    assert portal_post(client, f"/portal/tickets/{tid}/confirm").status_code == 303
    db.expire_all()
    assert db.get(Ticket, tid).state == "closed"
    refused = portal_post(client, f"/portal/tickets/{tid}/reply", {"body": "还有问题"})
    assert refused.status_code == 422
    actions = [
        (e.action, e.actor_contact_id)
        for e in db.scalars(
            select(AuditEntry)
            .where(AuditEntry.object_type == "ticket", AuditEntry.object_id == str(tid))
            .where(AuditEntry.actor_contact_id.is_not(None))
            .order_by(AuditEntry.id)
        )
    ]
    me = cs.contacts["stranger"].id
    assert ("ticket.customer_reply", me) in actions
    assert ("ticket.attachment", me) in actions
    assert actions[-1] == ("ticket.state", me)


def test_reopen_within_the_window_only(app, db):
    cs = build_customers(db)
    tid = next(t for t, c in cs.tickets.items() if c.id == cs.stranger.id)
    tickets.change_state(db, SYSTEM, db.get(Ticket, tid), "resolved")
    db.commit()
    client = TestClient(app)
    portal_login(client, cs.logins["stranger"])
    r = portal_post(client, f"/portal/tickets/{tid}/reopen", {"body": "还是不行"})
    assert r.status_code == 303
    db.expire_all()
    assert db.get(Ticket, tid).state == "open"
    # (A minute on: return visits are keyed by the resolution instant.)
    clock.set_now(lambda: NOW + timedelta(minutes=1))
    tickets.change_state(db, SYSTEM, db.get(Ticket, tid), "resolved")
    db.commit()
    later = NOW + timedelta(days=8)
    clock.set_now(lambda: later)
    portal_login(client, cs.logins["stranger"])  # the session of a week ago has ended
    page = client.get(f"/portal/tickets/{tid}").text
    assert "Reopen" not in page and 'id="reopen-form"' not in page
    late = portal_post(client, f"/portal/tickets/{tid}/reopen", {"body": "又坏了"})
    assert late.status_code == 422 and "超过可重新打开的期限" in late.text
    db.expire_all()
    assert db.get(Ticket, tid).state == "resolved"


def test_pages_in_english_for_an_english_contact(app, db):
    cs = build_customers(db)
    contact = cs.contacts["stranger"]
    contact.locale = "en"
    db.commit()
    client = TestClient(app)
    portal_login(client, cs.logins["stranger"])
    page = client.get("/portal?show=all").text
    assert "Your requests" in page and "New request" in page
    assert re.search(r"T\d{4}-\d{7}", page)


def test_staff_share_a_file_with_the_customer_from_the_console(app, db):
    from tests.factories import make_staff
    from tests.web.helpers import post, signed_in

    cs = build_customers(db)
    make_staff(db, cs.unit, username="share.agent", roles=("agent",))
    db.commit()
    tid = next(t for t, c in cs.tickets.items() if c.id == cs.stranger.id)
    staff = signed_in(TestClient(app), "share.agent")
    for name, public in (("内部分析.png", ""), ("处理报告.png", "1")):
        r = post(
            staff,
            f"/tickets/{tid}/attachments",
            {"public": public},
            files={"file": (name, PNG, "image/png")},
        )
        assert r.status_code == 303, r.text
    assert "已与客户共享" in staff.get(f"/tickets/{tid}").text
    client = TestClient(app)
    portal_login(client, cs.logins["stranger"])
    page = client.get(f"/portal/tickets/{tid}").text
    assert "处理报告.png" in page and "内部分析.png" not in page


def test_a_contact_sees_nothing_else_through_the_scope(db):
    """Every scoped model, read with a contact as viewer: tickets and customers of their own
    (the group administrator's: the group's), and no row of anything else."""
    from kefu.models import metadata
    from kefu.portal import service as portal_service
    from kefu.scope import count_visible
    from kefu.tickets.models import Ticket as T

    cs = build_customers(db)
    # Something in the other scoped tables too: a resolved ticket schedules a return visit.
    tickets.change_state(db, SYSTEM, db.get(Ticket, next(iter(cs.tickets))), "resolved")
    db.flush()
    scoped = {
        mapper.class_
        for mapper in metadata_mappers(metadata)
        if hasattr(mapper.class_, "__scope__")
    }
    assert T in scoped and len(scoped) > 3
    for key, contact in cs.contacts.items():
        viewer = portal_service.contact_viewer(contact, db.get(type(cs.group), contact.customer_id))
        for model in scoped:
            n = count_visible(db, model, viewer)
            if model is T:
                assert n == len(cs.expected(key)), key
            elif model.__name__ == "Customer":
                assert n == (3 if key == "group_admin" else 1), key
            elif model.__name__ == "BusinessCalendar":
                # Everybody "sees" the default calendar: a reference, nobody's data (and
                # no portal page reads calendars). No unit's own calendar.
                defaults = count_visible(db, model, SYSTEM, model.is_default.is_(True))
                assert n == defaults, key
            else:
                assert n == 0, f"{key} sees {n} rows of {model.__name__}"


def metadata_mappers(metadata):
    from kefu.db import Base

    return list(Base.registry.mappers)
