"""Email out, and whole threads in and out: a real dovecot for the customer's mail, a real
SMTP server (aiosmtpd) for Kefu's, the worker's fetch job and delivery loop between them."""

from __future__ import annotations

import ssl
from email.utils import parseaddr

import pytest
from sqlalchemy import select

from kefu.channels.models import Delivery
from kefu.customers import service as customers
from kefu.customers.schemas import ContactCreate
from kefu.jobs import deliver, mail_fetch
from kefu.mail import compose, templates
from kefu.mail.models import InboundMail
from kefu.scope import SYSTEM
from kefu.tickets import service as tickets
from kefu.tickets.models import Ticket, TicketEvent
from kefu.tickets.schemas import MessageIn, TicketCreate
from tests.factories import make_customer
from tests.mail.builders import mail as build
from tests.mail.builders import named, new_id
from tests.mail.servers import smtp_server


def _round(shop, session_factory):  # type: ignore[no-untyped-def]
    mail_fetch.run(session_factory)
    deliver.run(session_factory, max_seconds=20)
    shop.db.expire_all()


def _ticket_of(db, mid: str) -> Ticket:  # type: ignore[no-untyped-def]
    row = db.scalar(select(InboundMail).where(InboundMail.message_key == mid))
    assert row is not None and row.ticket_id, mid
    return db.get(Ticket, row.ticket_id)


def _thread(shop, session_factory, smtp, sender: str, subject: str, body: str):  # type: ignore[no-untyped-def]
    """The customer writes, is acknowledged, gets an agent's reply, answers it (from their
    mail client: In-Reply-To our Message-ID), and hears of the resolution."""
    first = new_id()
    shop.server.deliver(shop.user, build(sender, subject, body, msgid=first))
    _round(shop, session_factory)
    ticket = _ticket_of(shop.db, first)
    ack = smtp.messages()[-1]
    assert ack["In-Reply-To"] == f"<{first}>"
    assert ack["Auto-Submitted"] == "auto-generated"
    assert ticket.number in ack["Subject"]

    tickets.add_message(
        shop.db, SYSTEM, ticket.id, MessageIn(body="<p>请重启设备 / please restart it</p>")
    )
    shop.db.flush()
    _round(shop, session_factory)
    reply = smtp.messages()[-1]
    assert reply["Auto-Submitted"] is None  # a person wrote it
    assert reply["In-Reply-To"] == f"<{first}>"
    assert f"<{first}>" in reply["References"]
    assert "请重启设备 / please restart it" in reply.get_body(("plain",)).get_content()
    reply_to = parseaddr(reply["Reply-To"])[1]
    assert reply_to.startswith(shop.box.address.split("@")[0] + f"+t{ticket.id}-")

    answer = new_id()
    shop.server.deliver(
        shop.user,
        build(
            sender,
            "Re: " + str(reply["Subject"]),
            "好了，谢谢 / works now",
            msgid=answer,
            to=reply_to,
            in_reply_to=reply["Message-ID"].strip("<>"),
            references=[first, reply["Message-ID"].strip("<>")],
        ),
    )
    _round(shop, session_factory)
    joined = shop.db.scalar(select(InboundMail).where(InboundMail.message_key == answer))
    assert (joined.status, joined.ticket_id) == ("reply", ticket.id)

    shop.db.refresh(ticket)
    tickets.change_state(shop.db, SYSTEM, ticket, "resolved")
    shop.db.flush()
    _round(shop, session_factory)
    resolved = smtp.messages()[-1]
    assert ticket.number in resolved["Subject"]
    # Every mail of the thread names the same first mail, so clients keep them together.
    for m in (ack, reply, resolved):
        assert f"<{first}>" in m["References"]
        assert m["X-Kefu-Loop"]
    return ticket, [ack, reply, resolved]


def test_a_thread_in_chinese(shop, session_factory, smtp):
    ticket, (ack, reply, resolved) = _thread(
        shop,
        session_factory,
        smtp,
        named("张伟", "zhang.wei@huadongjx.cn"),
        "投影仪不亮",
        "会议室投影仪不亮。",
    )
    assert str(ack["Subject"]).startswith(f"[{ticket.number}] 我们已收到您的来信：投影仪不亮")
    assert "张伟，您好" in ack.get_body(("plain",)).get_content()
    assert "工单编号" in reply.get_body(("plain",)).get_content()
    assert "已解决" in str(resolved["Subject"])
    assert [t for _f, t, _c in smtp.envelopes] == [["zhang.wei@huadongjx.cn"]] * 3
    assert parseaddr(ack["From"])[1] == shop.box.address


def test_a_thread_in_english(shop, session_factory, smtp):
    contact = customers.add_contact(
        shop.db,
        SYSTEM,
        shop.customer.id,
        ContactCreate(
            name="Alice Smith", email="alice@huadongjx.cn", locale="en", preferred_channel="email"
        ),
    )
    shop.db.flush()
    ticket, (ack, reply, resolved) = _thread(
        shop,
        session_factory,
        smtp,
        "Alice Smith <alice@huadongjx.cn>",
        "Printer jam",
        "Tray 2 jams.",
    )
    assert ticket.contact_id == contact.id
    assert str(ack["Subject"]) == f"[{ticket.number}] We received your message: Printer jam"
    assert "Dear Alice Smith" in ack.get_body(("plain",)).get_content()
    assert "Reply to this mail to continue" in reply.get_body(("plain",)).get_content()
    assert str(resolved["Subject"]).startswith(f"[{ticket.number}] Your ticket is resolved")


def test_auto_replies_to_our_mail_make_no_loop(shop, session_factory, smtp):
    first = new_id()
    shop.server.deliver(shop.user, build("zhang.wei@huadongjx.cn", "报修", msgid=first))
    _round(shop, session_factory)
    ack = smtp.messages()[-1]
    # The customer's out-of-office answers our acknowledgement, and so does a bounce.
    shop.server.deliver(
        shop.user,
        build(
            "zhang.wei@huadongjx.cn",
            "自动回复: " + str(ack["Subject"]),
            msgid=new_id(),
            in_reply_to=ack["Message-ID"].strip("<>"),
            headers={"Auto-Submitted": "auto-replied"},
        ),
    )
    before = len(smtp.envelopes)
    _round(shop, session_factory)
    _round(shop, session_factory)
    assert len(smtp.envelopes) == before
    ticket = _ticket_of(shop.db, first)
    assert (
        shop.db.scalar(
            select(TicketEvent.id).where(
                TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "customer_reply"
            )
        )
        is None
    )


def test_header_injection_goes_nowhere(shop, session_factory, smtp):
    # A subject that tries to add a recipient, through the API's intake.
    ticket = tickets.open_ticket(
        shop.db,
        SYSTEM,
        TicketCreate(
            customer_id=shop.customer.id,
            contact_id=shop.contact.id,
            category_code="other",
            subject="报修\r\nBcc: evil@attacker.example",
            channel="email",
        ),
        channel="email",
    )
    tickets.add_message(shop.db, SYSTEM, ticket.id, MessageIn(body="收到"))
    shop.db.flush()
    deliver.run(session_factory, max_seconds=20)
    assert smtp.envelopes, "the reply was sent"
    _mail_from, rcpts, content = smtp.envelopes[-1]
    assert rcpts == ["Zhang.Wei@HuadongJX.cn"]
    head = content.split(b"\r\n\r\n", 1)[0]
    assert (
        b"\r\nBcc:" not in head
        and b"evil@attacker" not in head.replace(b"\r\n ", b" ").split(b"Subject:")[0]
    )
    assert str(smtp.messages()[-1]["Subject"]).endswith("报修 Bcc: evil@attacker.example")
    with pytest.raises(compose.BadHeader):
        compose.address("a@b.cn\r\nBcc: evil@attacker.example")
    with pytest.raises(compose.BadHeader):
        compose.address("a@b.cn, evil@attacker.example")


def test_refused_recipient_is_a_dead_letter_and_a_down_server_a_retry(
    shop, session_factory, smtp, settings
):
    rival = make_customer(shop.db, shop.unit, name="拒收公司")
    contact = customers.add_contact(
        shop.db,
        SYSTEM,
        rival.id,
        ContactCreate(name="王五", email=f"wang@{smtp.refused_domain}", preferred_channel="email"),
    )
    ticket = tickets.open_ticket(
        shop.db,
        SYSTEM,
        TicketCreate(
            customer_id=rival.id, contact_id=contact.id, category_code="other", subject="拒收"
        ),
    )
    tickets.add_message(shop.db, SYSTEM, ticket.id, MessageIn(body="答复"))
    shop.db.flush()
    deliver.run(session_factory, max_seconds=20)
    shop.db.expire_all()
    row = shop.db.scalar(select(Delivery).where(Delivery.channel == "email"))
    assert row.status == "dead" and "550" in (row.last_error or "")

    settings.smtp_port = 1  # nothing listens there
    tickets.add_message(shop.db, SYSTEM, ticket.id, MessageIn(body="再次答复"))
    shop.db.flush()
    deliver.run(session_factory, max_seconds=20)
    shop.db.expire_all()
    pending = shop.db.scalars(select(Delivery).where(Delivery.status == "pending")).all()
    assert len(pending) == 1 and pending[0].attempts == 1


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_smtp_over_tls_checks_the_certificate(shop, session_factory, settings, dovecot, security):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(dovecot.cert, dovecot.root / "key.pem")
    if security == "tls":
        controller, inbox = smtp_server(ssl_context=context)
    else:
        controller, inbox = smtp_server(tls_context=context, require_starttls=True)
    try:
        settings.smtp_host, settings.smtp_port = "localhost", controller.port
        settings.smtp_security = security
        settings.mail_ca_file = str(dovecot.cert)
        tickets.add_message(
            shop.db,
            SYSTEM,
            tickets.open_ticket(
                shop.db,
                SYSTEM,
                TicketCreate(
                    customer_id=shop.customer.id,
                    contact_id=shop.contact.id,
                    category_code="other",
                    subject="TLS",
                    channel="email",
                ),
                channel="email",
            ).id,
            MessageIn(body="加密发送"),
        )
        shop.db.flush()
        deliver.run(session_factory, max_seconds=20)
        assert len(inbox.envelopes) == 1
    finally:
        controller.stop()


def test_admins_reword_the_mails(shop, session_factory, smtp):
    from kefu.errors import Forbidden, Invalid

    with pytest.raises(Invalid) as bad:
        templates.save_wording(
            shop.db, SYSTEM, "ticket.acknowledged", "zh_CN", "{number} {secret}", "x"
        )
    assert bad.value.errors[0].field == "subject"
    with pytest.raises(Invalid):
        templates.save_wording(shop.db, SYSTEM, "ticket.acknowledged", "zh_CN", "a\r\nBcc: x", "x")
    from tests.factories import make_staff

    agent = make_staff(shop.db, shop.unit)
    from kefu.scope import Viewer

    viewer = Viewer(agent.id, agent.username, shop.unit.id, shop.unit.path, frozenset({"agent"}))
    with pytest.raises(Forbidden):
        templates.save_wording(shop.db, viewer, "ticket.acknowledged", "zh_CN", "s", "b")
    templates.save_wording(
        shop.db,
        SYSTEM,
        "ticket.acknowledged",
        "zh_CN",
        "已受理 {number}",
        "{contact}：已受理。{unknown",
    )
    shop.db.flush()
    shop.server.deliver(shop.user, build("zhang.wei@huadongjx.cn", "新的", msgid=new_id()))
    _round(shop, session_factory)
    ack = smtp.messages()[-1]
    assert str(ack["Subject"]).startswith("已受理 T")
    assert "张伟：已受理。{unknown" in ack.get_body(("plain",)).get_content()


def test_a_portal_invitation_reaches_the_contact_by_mail(db, settings, smtp, session_factory):
    from kefu.customers.schemas import ContactUpdate
    from kefu.portal import service as portal
    from tests.factories import make_unit

    settings.mail_from = "华东客服 <kefu@kefu.example.cn>"
    unit = make_unit(db)
    customer = make_customer(db, unit)
    contact = customers.add_contact(
        db,
        SYSTEM,
        customer.id,
        ContactCreate(name="Bob Lee", email="bob@client.example.com", locale="en"),
    )
    customers.update_contact(db, SYSTEM, customer.id, contact.id, ContactUpdate(portal_access=True))
    portal.invite(db, SYSTEM, customer.id, contact.id, base_url="https://kefu.example.cn")
    db.flush()
    deliver.run(session_factory, max_seconds=20)
    assert [t for _f, t, _c in smtp.envelopes] == [["bob@client.example.com"]]
    sent = smtp.messages()[0]
    assert str(sent["Subject"]) == "Your invitation to the customer portal"
    assert sent["Auto-Submitted"] == "auto-generated"
    text = sent.get_body(("plain",)).get_content()
    assert "Dear Bob Lee" in text and "https://kefu.example.cn/portal/welcome/" in text


def test_staff_hear_of_a_breach_by_mail_in_their_language(shop, session_factory, smtp):
    from kefu.notifications.service import notify
    from kefu.staff import service as staff_service
    from kefu.staff.schemas import StaffUpdate
    from tests.factories import make_staff

    head = make_staff(shop.db, shop.unit, roles=("supervisor",), locale="en")
    staff_service.update_staff(shop.db, SYSTEM, head.id, StaffUpdate(email="head@kefu.example.cn"))
    ticket = tickets.open_ticket(
        shop.db,
        SYSTEM,
        TicketCreate(customer_id=shop.customer.id, category_code="other", subject="超时的工单"),
    )
    payload = {"ticket_id": ticket.id, "number": ticket.number}
    notify(shop.db, "sla.breach", f"staff:{head.id}", payload, f"test.breach:{ticket.id}")
    # Not on by default for staff: a transfer notice goes to the bell only.
    notify(shop.db, "ticket.transferred", f"staff:{head.id}", payload, f"test.tr:{ticket.id}")
    shop.db.flush()
    deliver.run(session_factory, max_seconds=20)
    assert [t for _f, t, _c in smtp.envelopes] == [["head@kefu.example.cn"]]
    sent = smtp.messages()[0]
    assert str(sent["Subject"]) == f"[{ticket.number}] SLA target overdue: 超时的工单"
    assert sent["Auto-Submitted"] == "auto-generated"
    assert "Customer: 华东机械有限公司" in sent.get_body(("plain",)).get_content()
