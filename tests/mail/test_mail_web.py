"""The mail pages: mailboxes (administrators) and held mail (agents, scoped)."""

from __future__ import annotations

from sqlalchemy import select

from kefu import crypto
from kefu.mail import service as mail
from kefu.mail.models import InboundMail, Mailbox
from kefu.mail.schemas import MailboxCreate
from kefu.scope import SYSTEM
from kefu.tickets.models import Ticket
from tests.factories import make_customer, make_staff, make_unit
from tests.mail.builders import mail as build
from tests.mail.builders import new_id
from tests.web.helpers import HX, field_error, post, signed_in

FORM = {
    "name": "客服邮箱",
    "address": "kf@kefu.example.cn",
    "function": "service",
    "category_code": "other",
    "imap_host": "imap.kefu.example.cn",
    "imap_port": "993",
    "imap_security": "tls",
    "imap_user": "kf",
    "imap_password": "秘密 secret",
    "imap_folder": "INBOX",
    "is_active": "1",
}


def test_admin_adds_and_edits_a_mailbox(client, db):
    unit = make_unit(db, "总部")
    admin = make_staff(db, unit, roles=("admin",))
    signed_in(client, admin.username)
    page = client.get("/mailboxes")
    assert page.status_code == 200 and "新建邮箱" in page.text
    bad = post(client, "/mailboxes", {**FORM, "unit_id": str(unit.id), "imap_host": "bad host"})
    assert bad.status_code == 422
    assert field_error(bad.text, "f-new-imap_host")
    assert "秘密" not in bad.text  # the password is never echoed back
    assert post(client, "/mailboxes", {**FORM, "unit_id": str(unit.id)}).status_code == 303
    box = db.scalar(select(Mailbox).where(Mailbox.address == "kf@kefu.example.cn"))
    assert crypto.decrypt(box.imap_password, crypto.MAILBOX_PASSWORD) == "秘密 secret"
    listing = client.get("/mailboxes").text
    assert "kf@kefu.example.cn" in listing and "秘密" not in listing

    edit = client.get(f"/mailboxes/{box.id}")
    assert edit.status_code == 200 and "秘密" not in edit.text
    changed = {**FORM, "unit_id": str(unit.id), "imap_password": "", "name": "新名字"}
    assert post(client, f"/mailboxes/{box.id}", changed).status_code == 303
    db.expire_all()
    box = db.get(Mailbox, box.id)
    assert (
        box.name == "新名字"
        and crypto.decrypt(box.imap_password, crypto.MAILBOX_PASSWORD) == "秘密 secret"
    )


def test_mailbox_pages_are_404_for_others(client, db):
    unit = make_unit(db)
    manager = make_staff(db, unit, roles=("manager",))
    signed_in(client, manager.username)
    assert client.get("/mailboxes").status_code == 404
    assert post(client, "/mailboxes", {**FORM, "unit_id": str(unit.id)}).status_code == 404
    assert 'href="/mailboxes"' not in client.get("/").text


def test_agent_turns_held_mail_into_a_ticket_or_drops_it(client, db):
    unit = make_unit(db)
    other = make_unit(db)
    agent = make_staff(db, unit, roles=("agent",))
    customer = make_customer(db, unit)
    mine = mail.create_mailbox(
        db,
        SYSTEM,
        MailboxCreate(
            name="甲",
            address="a@kefu.example.cn",
            unit_id=unit.id,
            imap_host="h.example.cn",
            imap_user="a",
            imap_password="p",
        ),
    )
    theirs = mail.create_mailbox(
        db,
        SYSTEM,
        MailboxCreate(
            name="乙",
            address="b@kefu.example.cn",
            unit_id=other.id,
            imap_host="h.example.cn",
            imap_user="b",
            imap_password="p",
        ),
    )
    first = mail.receive(db, mine, build("x@unknown.example", "陌生来信一", msgid=new_id()))
    second = mail.receive(db, mine, build("y@unknown.example", "陌生来信二", msgid=new_id()))
    hidden = mail.receive(db, theirs, build("z@unknown.example", "别人的来信", msgid=new_id()))
    quarantined = mail.receive(
        db,
        mine,
        b"From: \r\nSubject: no sender\r\nMessage-ID: <" + new_id().encode() + b">\r\n\r\nx",
    )
    db.commit()
    signed_in(client, agent.username)
    page = client.get("/mail/held")
    assert page.status_code == 200
    assert "no sender" in page.text  # agents see the quarantine; administrators act on it
    assert f"/mail/held/{quarantined.id}/drop" not in page.text
    assert f"/mail/held/{first.id}/drop" in page.text
    assert "陌生来信一" in page.text and "陌生来信二" in page.text and "别人的来信" not in page.text
    fragment = client.get("/mail/held", params={"status": "unknown_sender"}, headers=HX)
    assert fragment.status_code == 200 and "陌生来信一" in fragment.text

    made = post(client, f"/mail/held/{first.id}/assign", {"customer_id": str(customer.id)})
    assert made.status_code == 303
    ticket = db.scalar(select(Ticket).where(Ticket.subject == "陌生来信一"))
    assert made.headers["location"].startswith(f"/tickets/{ticket.id}")
    assert post(client, f"/mail/held/{second.id}/drop").status_code == 303
    assert post(client, f"/mail/held/{hidden.id}/drop").status_code == 404
    db.expire_all()
    assert db.get(InboundMail, second.id).status == "dropped"
    assert db.get(InboundMail, hidden.id).status == "unknown_sender"


def test_admin_rewords_a_mail_on_the_templates_page(client, db):
    admin = make_staff(db, make_unit(db), roles=("admin",))
    signed_in(client, admin.username)
    page = client.get("/mail/templates")
    assert page.status_code == 200 and "邮件模板" in page.text and "我们已收到您的来信" in page.text
    bad = post(
        client, "/mail/templates/ticket.acknowledged/zh_CN", {"subject": "{nope}", "body": "x"}
    )
    assert bad.status_code == 422 and "未知的占位符" in bad.text
    ok = post(
        client,
        "/mail/templates/ticket.acknowledged/zh_CN",
        {"subject": "受理 {number}", "body": "好"},
    )
    assert ok.status_code == 303
    assert "受理 {number}" in client.get("/mail/templates").text
    reset = {"subject": "x", "body": "y", "reset": "1"}
    assert post(client, "/mail/templates/ticket.acknowledged/zh_CN", reset).status_code == 303
    assert "受理 {number}" not in client.get("/mail/templates").text
