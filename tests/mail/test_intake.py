"""Email in, end to end: mails delivered to a real dovecot, fetched by the worker's job,
taken in through the one ticket intake."""

from __future__ import annotations

import io
import zipfile

import pytest
from sqlalchemy import func, select

from kefu.jobs import mail_fetch
from kefu.mail import service as mail
from kefu.mail.models import InboundMail
from kefu.notifications.models import OutboxMessage
from kefu.scope import SYSTEM
from kefu.tickets import service as tickets
from kefu.tickets.models import Ticket, TicketAttachment, TicketEvent
from tests.factories import make_customer
from tests.mail.builders import encoded_word, legacy, named, new_id
from tests.mail.builders import mail as build

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
    b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)
ZHANG = named("张伟", "zhang.wei@huadongjx.cn")


def fetch(shop, session_factory):  # type: ignore[no-untyped-def]
    result = mail_fetch.run(session_factory)
    shop.db.expire_all()
    return result


def row_of(db, msgid: str) -> InboundMail:  # type: ignore[no-untyped-def]
    row = db.scalar(select(InboundMail).where(InboundMail.message_key == msgid))
    assert row is not None, msgid
    return row


def ticket_count(db) -> int:  # type: ignore[no-untyped-def]
    return int(db.scalar(select(func.count()).select_from(Ticket)) or 0)


def test_a_new_mail_becomes_a_ticket_once_and_is_seen_after(shop, session_factory):
    mid = new_id()
    shop.server.deliver(
        shop.user,
        build(
            ZHANG,
            "打印机无法开机 / printer will not start",
            "机器开不了机。\n请尽快处理。",
            msgid=mid,
        ),
    )
    assert shop.server.flags(shop.user) == {1: ""}
    assert fetch(shop, session_factory)["taken"] == 1

    row = row_of(shop.db, mid)
    assert row.status == "ticket"
    ticket = shop.db.get(Ticket, row.ticket_id)
    assert ticket.channel == "email"
    assert ticket.customer_id == shop.customer.id
    assert ticket.contact_id == shop.contact.id  # matched whatever the address's case
    assert ticket.subject == "打印机无法开机 / printer will not start"
    assert "机器开不了机。<br>请尽快处理。" in ticket.description
    assert ticket.idempotency_key == f"email:{mid}"
    assert "\\Seen" in shop.server.flags(shop.user)[1]

    # A crash after the commit but before the flag: the mail is unseen again. The next run
    # finds its Message-ID taken in and only flags it.
    shop.server.unflag_all(shop.user)
    fetch(shop, session_factory)
    assert ticket_count(shop.db) == 1
    assert "\\Seen" in shop.server.flags(shop.user)[1]
    # The same mail delivered twice (a second copy on the server) makes nothing new either.
    shop.server.deliver(shop.user, build(ZHANG, "打印机无法开机", msgid=mid))
    fetch(shop, session_factory)
    assert ticket_count(shop.db) == 1


def test_a_reply_in_the_thread_reopens_a_resolved_ticket(shop, session_factory):
    first = new_id()
    shop.server.deliver(shop.user, build(ZHANG, "网络中断", "办公室断网了。", msgid=first))
    fetch(shop, session_factory)
    ticket = shop.db.get(Ticket, row_of(shop.db, first).ticket_id)
    tickets.change_state(shop.db, SYSTEM, ticket, "open")
    tickets.change_state(shop.db, SYSTEM, ticket, "resolved")
    shop.db.flush()

    again = new_id()
    shop.server.deliver(
        shop.user,
        build(
            ZHANG,
            "Re: 网络中断",
            "还是不行 — still down.",
            msgid=again,
            in_reply_to=first,
            references=[first],
        ),
    )
    fetch(shop, session_factory)
    row = row_of(shop.db, again)
    assert (row.status, row.ticket_id) == ("reply", ticket.id)
    shop.db.refresh(ticket)
    assert ticket.state == "open"
    reply = shop.db.scalar(
        select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "customer_reply"
        )
    )
    assert "still down" in reply.body
    assert ticket_count(shop.db) == 1


def test_thread_by_signed_reply_address_and_by_ticket_number(shop, session_factory):
    from kefu.mail import threads

    first = new_id()
    shop.server.deliver(shop.user, build(ZHANG, "报价", msgid=first))
    fetch(shop, session_factory)
    ticket = shop.db.get(Ticket, row_of(shop.db, first).ticket_id)

    by_address, by_number = new_id(), new_id()
    shop.server.deliver(
        shop.user,
        # A colleague at another address writes to the ticket's reply address.
        build(
            "someone@partner.example.com",
            "补充资料",
            msgid=by_address,
            to=threads.reply_address(shop.box.address, ticket.id),
        ),
        build(ZHANG, f"Re: [{ticket.number}] 报价", msgid=by_number),
    )
    fetch(shop, session_factory)
    assert row_of(shop.db, by_address).ticket_id == ticket.id
    assert row_of(shop.db, by_number).ticket_id == ticket.id
    assert row_of(shop.db, by_number).status == "reply"
    # A reply address with a forged signature names no ticket.
    assert threads.ticket_of_recipients([f"x+t{ticket.id}-0000000000@kefu.example.cn"]) is None


def test_a_forged_sender_never_joins_another_customers_ticket(shop, session_factory):
    first = new_id()
    shop.server.deliver(shop.user, build(ZHANG, "合同问题", msgid=first))
    fetch(shop, session_factory)
    ticket = shop.db.get(Ticket, row_of(shop.db, first).ticket_id)

    rival = make_customer(shop.db, shop.unit, name="对手公司")
    from kefu.customers import service as customers
    from kefu.customers.schemas import ContactCreate

    customers.add_contact(
        shop.db, SYSTEM, rival.id, ContactCreate(name="李四", email="li@rival.example.com")
    )
    shop.db.flush()
    forged_number, forged_dmarc = new_id(), new_id()
    shop.server.deliver(
        shop.user,
        # Someone of another customer quotes the ticket number: a new ticket of their own.
        build("li@rival.example.com", f"Re: [{ticket.number}] 合同问题", msgid=forged_number),
        # Someone pretends to be Zhang, and the receiving server says DMARC failed.
        build(
            ZHANG,
            f"Re: [{ticket.number}] 合同问题",
            msgid=forged_dmarc,
            headers={
                "Authentication-Results": "mx.kefu.example.cn; dmarc=fail header.from=huadongjx.cn"
            },
        ),
    )
    fetch(shop, session_factory)
    by_rival = row_of(shop.db, forged_number)
    assert by_rival.status == "ticket" and by_rival.ticket_id != ticket.id
    assert shop.db.get(Ticket, by_rival.ticket_id).customer_id == rival.id
    spoofed = row_of(shop.db, forged_dmarc)
    assert (spoofed.status, spoofed.reason, spoofed.ticket_id) == (
        "unknown_sender",
        "unauthenticated",
        None,
    )
    assert (
        shop.db.scalar(
            select(func.count())
            .select_from(TicketEvent)
            .where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "customer_reply")
        )
        == 0
    )


def test_customer_by_domain_else_unknown_sender_queue_then_assigned(shop, session_factory):
    colleague, stranger, freemail = new_id(), new_id(), new_id()
    shop.server.deliver(
        shop.user,
        build("wang.fang@huadongjx.cn", "新员工来信", msgid=colleague),
        build("nobody@unknown-corp.example", "你好", msgid=stranger),
        build("someone@qq.com", "你好", msgid=freemail),
    )
    fetch(shop, session_factory)
    row = row_of(shop.db, colleague)
    assert row.status == "ticket"
    ticket = shop.db.get(Ticket, row.ticket_id)
    assert (ticket.customer_id, ticket.contact_id) == (shop.customer.id, None)
    for mid in (stranger, freemail):
        held = row_of(shop.db, mid)
        assert (held.status, held.ticket_id) == ("unknown_sender", None)
        assert mail.raw_of(held) is not None  # kept for the person who sorts it out

    from kefu.mail.schemas import AssignIn

    made = mail.assign_mail(
        shop.db, SYSTEM, row_of(shop.db, stranger).id, AssignIn(customer_id=shop.customer.id)
    )
    shop.db.flush()
    assert made.channel == "email" and made.customer_id == shop.customer.id
    assert row_of(shop.db, stranger).status == "ticket"


def test_auto_replies_and_bounces_make_nothing(shop, session_factory):
    mids = [new_id() for _ in range(6)]
    dsn = (
        b"From: MAILER-DAEMON@mx.example.com\r\nTo: support@kefu.example.cn\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <"
        + mids[5].encode()
        + b">\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; "
        b"boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        b"--b1\r\nContent-Type: message/delivery-status\r\n\r\nStatus: 5.1.1\r\n--b1--\r\n"
    )
    shop.server.deliver(
        shop.user,
        build(ZHANG, "自动回复：外出", msgid=mids[0], headers={"Auto-Submitted": "auto-replied"}),
        build(ZHANG, "Newsletter", msgid=mids[1], headers={"Precedence": "bulk"}),
        build(ZHANG, "Digest", msgid=mids[2], headers={"Precedence": "list"}),
        build(ZHANG, "Out of office", msgid=mids[3], headers={"X-Autoreply": "yes"}),
        build(ZHANG, "bounce", msgid=mids[4], headers={"Return-Path": "<>"}),
        dsn,
    )
    fetch(shop, session_factory)
    reasons = [row_of(shop.db, m).reason for m in mids]
    assert reasons == [
        "auto_submitted",
        "precedence",
        "precedence",
        "auto_submitted",
        "null_sender",
        "report",
    ]
    assert all(row_of(shop.db, m).status == "ignored" for m in mids)
    assert ticket_count(shop.db) == 0
    assert shop.db.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert all("\\Seen" in f for f in shop.server.flags(shop.user).values())


def test_charsets_and_encoded_headers(shop, session_factory):
    mids = [new_id() for _ in range(5)]
    shop.server.deliver(
        shop.user,
        # GB2312-labelled body holding a GBK-only character (镕), raw 8-bit GBK subject.
        legacy(
            ZHANG.split("<")[1].rstrip(">"),
            "设备报修".encode("gbk"),
            "朱镕基路的设备坏了".encode("gbk"),
            "gb2312",
            mids[0],
        ),
        legacy(
            "zhang.wei@huadongjx.cn",
            encoded_word("繁體報修", "big5").encode(),
            "機器壞了".encode("big5"),
            "big5",
            mids[1],
        ),
        legacy(
            "zhang.wei@huadongjx.cn",
            encoded_word("GBK 主题", "gbk").encode(),
            "正文".encode("gbk"),
            "GBK",
            mids[2],
        ),
        # An unknown charset: read as UTF-8 (or GB18030), noted.
        legacy(
            "zhang.wei@huadongjx.cn",
            b"=?x-klingon?B?SGVsbG8=?=",
            "未知编码的正文".encode(),
            "x-klingon",
            mids[3],
        ),
        build(named("王芳", "zhang.wei@huadongjx.cn"), "UTF-8 主题 ✓", "UTF-8 正文", msgid=mids[4]),
    )
    fetch(shop, session_factory)
    got = []
    for mid in mids:
        row = row_of(shop.db, mid)
        assert row.status == "ticket", (mid, row.reason, row.detail)
        t = shop.db.get(Ticket, row.ticket_id)
        got.append((t.subject, t.description))
    assert got[0] == ("设备报修", "<p>朱镕基路的设备坏了</p>")
    assert got[1] == ("繁體報修", "<p>機器壞了</p>")
    assert got[2] == ("GBK 主题", "<p>正文</p>")
    assert got[3][1] == "<p>未知编码的正文</p>"
    assert "unknown charset" in row_of(shop.db, mids[3]).detail
    assert got[4] == ("UTF-8 主题 ✓", "<p>UTF-8 正文</p>")


def test_html_is_sanitised_and_attachments_and_inline_images_kept(shop, session_factory):
    mid = new_id()
    html = '<p onclick="x()">看图 <img src="cid:pic1@client"></p><script>alert(1)</script>'
    raw = build(
        ZHANG,
        "带附件",
        "",
        msgid=mid,
        html=html,
        inline=[("pic1@client", "image/png", PNG)],
        attachments=[
            ("报告.pdf", "application/pdf", b"%PDF-1.4\n%test\n"),
            ("setup.exe", "application/octet-stream", b"MZ\x90\x00" + b"\x00" * 100),
        ],
    )
    shop.server.deliver(shop.user, raw)
    fetch(shop, session_factory)
    row = row_of(shop.db, mid)
    assert row.status == "ticket", row.detail
    ticket = shop.db.get(Ticket, row.ticket_id)
    files = shop.db.scalars(
        select(TicketAttachment)
        .where(TicketAttachment.ticket_id == ticket.id)
        .order_by(TicketAttachment.id)
    ).all()
    assert sorted(f.kind for f in files) == ["pdf", "png"]
    png = next(f for f in files if f.kind == "png")
    assert "<script" not in ticket.description and "onclick" not in ticket.description
    assert f'src="/tickets/{ticket.id}/attachments/{png.id}"' in ticket.description
    refused = shop.db.scalar(
        select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "attachment_refused"
        )
    )
    assert refused.data["filename"] == "setup.exe"


def test_bad_mail_is_quarantined_and_the_rest_keeps_flowing(shop, session_factory, mail_settings):
    mail_settings.mail_max_mb = 1.0  # a 50 MB mail would do; 1 MB keeps the test quick
    mids = {k: new_id() for k in ("big", "bomb", "broken", "nosender", "fine")}
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.bin", b"\x00" * (60 * 1024 * 1024))
    broken = (
        b"From: zhang.wei@huadongjx.cn\r\nSubject: broken\r\nMessage-ID: <"
        + mids["broken"].encode()
        + b">\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=abc\r\n\r\n"
        b"no boundary ever starts here\r\n"
    )
    shop.server.deliver(
        shop.user,
        build(
            ZHANG,
            "大附件",
            msgid=mids["big"],
            attachments=[("big.pdf", "application/pdf", b"%PDF-" + b"x" * 1_200_000)],
        ),
        build(
            ZHANG,
            "压缩包",
            msgid=mids["bomb"],
            attachments=[("logs.zip", "application/zip", bomb.getvalue())],
        ),
        broken,
        build("", "无发件人", msgid=mids["nosender"]),
        build(ZHANG, "正常来信", msgid=mids["fine"]),
    )
    fetch(shop, session_factory)
    held = {k: row_of(shop.db, m) for k, m in mids.items()}
    assert {k: (r.status, r.reason) for k, r in held.items()} == {
        "big": ("quarantined", "too_large"),
        "bomb": ("quarantined", "zip_bomb"),
        "broken": ("quarantined", "malformed"),
        "nosender": ("quarantined", "no_sender"),
        "fine": ("ticket", None),
    }
    assert held["big"].raw_sha256 is None  # never downloaded
    assert mail.raw_of(held["bomb"]) is not None
    assert all("\\Seen" in f for f in shop.server.flags(shop.user).values())

    # An administrator raises the limit and retries the large one; drops the bomb.
    mail_settings.mail_max_mb = 5.0
    mail.retry_mail(shop.db, SYSTEM, held["big"].id)
    mail.drop_mail(shop.db, SYSTEM, held["bomb"].id)
    shop.db.flush()
    fetch(shop, session_factory)
    assert row_of(shop.db, mids["big"]).status == "ticket"
    bomb_row = row_of(shop.db, mids["bomb"])
    assert bomb_row.status == "dropped" and mail.raw_of(bomb_row) is None


def test_header_newlines_in_a_subject_stay_one_line(shop, session_factory):
    mid = new_id()
    raw = (
        b"From: zhang.wei@huadongjx.cn\r\nTo: support@kefu.example.cn\r\n"
        b"Subject: =?utf-8?B?"
        + __import__("base64").b64encode("报修\r\nBcc: evil@x.com".encode())
        + b"?=\r\nMessage-ID: <"
        + mid.encode()
        + b">\r\n\r\nbody\r\n"
    )
    shop.server.deliver(shop.user, raw)
    fetch(shop, session_factory)
    ticket = shop.db.get(Ticket, row_of(shop.db, mid).ticket_id)
    assert "\n" not in ticket.subject and "\r" not in ticket.subject
    assert ticket.subject == "报修 Bcc: evil@x.com"


def test_tls_and_starttls_with_certificate_checks(db, dovecot, mail_settings, session_factory):
    from tests.factories import make_unit
    from tests.mail.conftest import make_mailbox

    unit = make_unit(db, "安全单位")
    customer = make_customer(db, unit)
    from kefu.customers import service as customers
    from kefu.customers.schemas import ContactCreate

    customers.add_contact(
        db, SYSTEM, customer.id, ContactCreate(name="赵六", email="zhao@secure.example.cn")
    )
    tls_box, tls_user = make_mailbox(db, dovecot, unit, security="tls", host="localhost")
    _starttls_box, starttls_user = make_mailbox(
        db, dovecot, unit, security="starttls", host="localhost"
    )
    db.flush()
    dovecot.deliver(tls_user, build("zhao@secure.example.cn", "TLS", msgid=new_id()))
    dovecot.deliver(starttls_user, build("zhao@secure.example.cn", "STARTTLS", msgid=new_id()))
    assert mail_fetch.run(session_factory)["taken"] == 2
    db.expire_all()
    assert {t.subject for t in db.scalars(select(Ticket))} >= {"TLS", "STARTTLS"}

    # Without trusting the test server's certificate, the fetch fails and says so.
    mail_settings.mail_ca_file = ""
    dovecot.deliver(tls_user, build("zhao@secure.example.cn", "again", msgid=new_id()))
    result = mail_fetch.run(session_factory)
    assert result["failed_mailboxes"] == 2
    db.expire_all()
    db.refresh(tls_box)
    assert "CERTIFICATE_VERIFY_FAILED" in (tls_box.last_error or "")


def test_a_wrong_password_is_reported_on_the_mailbox(shop, session_factory):
    from kefu.mail.schemas import MailboxUpdate

    mail.update_mailbox(shop.db, SYSTEM, shop.box.id, MailboxUpdate(imap_password="wrong"))
    shop.db.flush()
    assert fetch(shop, session_factory)["failed_mailboxes"] == 1
    shop.db.refresh(shop.box)
    assert "AUTHENTICATIONFAILED" in shop.box.last_error or "failed" in shop.box.last_error.lower()


def test_a_mail_is_not_flagged_seen_when_nothing_could_be_recorded(
    dovecot, mail_settings, committed_engine
):
    """The database refuses every write (read-only): neither the ticket nor a quarantine
    row can be stored, so the mail stays unseen on the server for the next run."""
    from datetime import timedelta

    from sqlalchemy import event

    from kefu.db import make_sessionmaker, unit_of_work
    from tests.factories import make_unit
    from tests.mail.conftest import make_mailbox

    factory = make_sessionmaker(committed_engine)
    with unit_of_work(factory) as session:
        unit = make_unit(session, "只读单位")
        make_customer(session, unit)
        _box, user = make_mailbox(session, dovecot, unit)
    with unit_of_work(factory) as session:
        access = mail.claim_mailboxes(session, timedelta(minutes=1))[0]

    def read_only(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        if committed_engine.dialect.name == "sqlite":
            cur.execute("PRAGMA query_only = ON")
        else:
            cur.execute("SET default_transaction_read_only = on")
        cur.close()

    event.listen(committed_engine, "connect", read_only)
    committed_engine.dispose()
    dovecot.deliver(user, build(ZHANG, "写不进去", msgid=new_id()))
    assert mail_fetch.fetch_mailbox(factory, access) == 0
    assert dovecot.flags(user) == {1: ""}

    # With a database that takes writes again, the same mail goes through and is flagged.
    event.remove(committed_engine, "connect", read_only)
    committed_engine.dispose()
    assert mail_fetch.fetch_mailbox(factory, access) == 1
    assert "\\Seen" in dovecot.flags(user)[1]


@pytest.mark.slow
def test_a_50_mb_attachment_is_quarantined_unread(shop, session_factory):
    import base64

    mid = new_id()
    payload = base64.encodebytes(b"%PDF-1.4\n" + b"\x00" * (50 * 1024 * 1024)).replace(
        b"\n", b"\r\n"
    )
    raw = (
        b"From: zhang.wei@huadongjx.cn\r\nTo: support@kefu.example.cn\r\nSubject: big\r\n"
        b"Message-ID: <" + mid.encode() + b">\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=bb\r\n\r\n--bb\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + "见附件".encode() + b"\r\n--bb\r\n"
        b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="big.pdf"\r\n\r\n' + payload + b"--bb--\r\n"
    )
    after = new_id()
    shop.server.deliver(shop.user, raw, build(ZHANG, "之后的来信", msgid=after))
    fetch(shop, session_factory)
    held = row_of(shop.db, mid)
    assert (held.status, held.reason, held.raw_sha256) == ("quarantined", "too_large", None)
    assert held.size > 50 * 1024 * 1024 and held.subject == "big"
    assert row_of(shop.db, after).status == "ticket"
    assert all("\\Seen" in f for f in shop.server.flags(shop.user).values())


def test_a_reply_to_a_closed_ticket_opens_a_new_one_naming_it(shop, session_factory):
    first = new_id()
    shop.server.deliver(shop.user, build(ZHANG, "网络中断", "办公室断网了。", msgid=first))
    fetch(shop, session_factory)
    old = shop.db.get(Ticket, row_of(shop.db, first).ticket_id)
    for state in ("open", "resolved", "closed"):
        tickets.change_state(shop.db, SYSTEM, old, state)
    shop.db.flush()
    again = new_id()
    shop.server.deliver(
        shop.user,
        build(
            ZHANG, "Re: 网络中断", "又断了。", msgid=again, in_reply_to=first, references=[first]
        ),
    )
    fetch(shop, session_factory)
    row = row_of(shop.db, again)
    assert row.status == "ticket" and row.ticket_id != old.id
    new = shop.db.get(Ticket, row.ticket_id)
    assert new.customer_id == old.customer_id and new.custom_fields == {}
    created = shop.db.scalar(
        select(TicketEvent).where(TicketEvent.ticket_id == new.id, TicketEvent.kind == "created")
    )
    assert created.data["follows"] == old.number and created.data["follows_id"] == old.id
