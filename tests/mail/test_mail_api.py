"""The mail API: mailboxes (administrators), the intake log, retry / drop / assign, scope."""

from __future__ import annotations

from sqlalchemy import select

from kefu import crypto
from kefu.audit.models import AuditEntry
from kefu.mail import service as mail
from kefu.mail.models import InboundMail, Mailbox
from kefu.mail.schemas import MailboxCreate
from kefu.scope import SYSTEM
from tests.factories import make_customer, make_staff, make_unit, token_for
from tests.mail.builders import mail as build
from tests.mail.builders import new_id
from tests.scope_matrix import build_org, check_scope


def _box(db, unit, address: str) -> Mailbox:  # type: ignore[no-untyped-def]
    box = mail.create_mailbox(
        db,
        SYSTEM,
        MailboxCreate(
            name="邮箱",
            address=address,
            unit_id=unit.id,
            imap_host="imap.example.cn",
            imap_user=address,
            imap_password="s3cret-密码",
        ),
    )
    db.flush()
    return box


def test_admin_creates_a_mailbox_and_the_password_never_shows(client, db):
    unit = make_unit(db)
    admin = token_for(db, make_staff(db, unit, roles=("admin",)))
    manager = token_for(db, make_staff(db, unit, roles=("manager",)))
    body = {
        "name": "技术支持邮箱",
        "address": "support@kefu.example.cn",
        "unit_id": unit.id,
        "function": "technical",
        "category_code": "technical_support",
        "imap_host": "imap.kefu.example.cn",
        "imap_port": 993,
        "imap_security": "tls",
        "imap_user": "support",
        "imap_password": "p@ss 密码",
    }
    assert client.post("/api/v1/mailboxes", headers=manager, json=body).status_code == 403
    r = client.post("/api/v1/mailboxes", headers=admin, json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert "imap_password" not in out and r.headers["Location"].endswith(f"/mailboxes/{out['id']}")
    stored = db.get(Mailbox, out["id"])
    assert (
        "p@ss" not in stored.imap_password
        and crypto.decrypt(stored.imap_password, crypto.MAILBOX_PASSWORD) == "p@ss 密码"
    )
    # Same address again, bad host, unknown category: refused, naming the field.
    r = client.post("/api/v1/mailboxes", headers=admin, json=body)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "address"
    bad = {
        **body,
        "address": "b@kefu.example.cn",
        "imap_host": "imap host\r\nX",
        "category_code": "nope",
    }
    r = client.post("/api/v1/mailboxes", headers=admin, json=bad)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "imap_host"
    r = client.patch(
        f"/api/v1/mailboxes/{out['id']}", headers=admin, json={"imap_password": "new one"}
    )
    assert r.status_code == 200
    db.expire_all()
    assert (
        crypto.decrypt(db.get(Mailbox, out["id"]).imap_password, crypto.MAILBOX_PASSWORD)
        == "new one"
    )
    audits = db.scalars(select(AuditEntry).where(AuditEntry.object_type == "mailbox")).all()
    assert [a.action for a in audits] == ["mailbox.create", "mailbox.update"]
    assert all("p@ss" not in str(a.changes) and "new one" not in str(a.changes) for a in audits)


def test_another_secret_key_cannot_read_the_password(db, settings):
    from kefu.config import use_settings

    box = _box(db, make_unit(db), "k@kefu.example.cn")
    use_settings(settings.model_copy(update={"secret_key": "another key"}))
    try:
        import pytest

        with pytest.raises(crypto.SecretUnreadable):
            crypto.decrypt(box.imap_password, crypto.MAILBOX_PASSWORD)
    finally:
        use_settings(settings)


def test_mailboxes_and_inbound_mail_are_scoped(client, db):
    org = build_org(db)
    boxes, mails = {}, {}
    for key, unit in org.units.items():
        box = _box(db, unit, f"{key.replace('_', '-')}@kefu.example.cn")
        boxes[box.id] = unit
        row = mail.receive(db, box, build("stranger@nowhere.example", "你好", msgid=new_id()))
        assert row.status == "unknown_sender"
        mails[row.id] = unit
    db.commit()
    check_scope(
        client,
        org,
        list_url="/api/v1/mailboxes",
        detail_url=lambda i: f"/api/v1/mailboxes/{i}",
        records=boxes,
        write=("PATCH", {"name": "x"}),
    )
    check_scope(
        client,
        org,
        list_url="/api/v1/inbound-mails",
        detail_url=lambda i: f"/api/v1/inbound-mails/{i}",
        records=mails,
    )
    # Out of scope: retry, drop and assign answer 404 too.
    county_mail = next(i for i, u in mails.items() if u.id == org.county_z.id)
    for action in ("retry", "drop"):
        r = client.post(
            f"/api/v1/inbound-mails/{county_mail}/{action}", headers=org.headers["city_a"]
        )
        assert r.status_code == 404


def test_unknown_sender_assign_retry_drop(client, db):
    unit = make_unit(db)
    agent = token_for(db, make_staff(db, unit, roles=("agent",)))
    admin = token_for(db, make_staff(db, unit, roles=("admin",)))
    customer = make_customer(db, unit)
    box = _box(db, unit, "in@kefu.example.cn")
    held = [
        mail.receive(db, box, build("who@nowhere.example", f"来信{i}", msgid=new_id()))
        for i in range(3)
    ]
    bad = mail.receive(
        db, box, b"From: \r\nSubject: none\r\nMessage-ID: <" + new_id().encode() + b">\r\n\r\nx"
    )
    db.commit()
    assert bad.status == "quarantined" and bad.reason == "no_sender"

    r = client.get("/api/v1/inbound-mails", headers=agent, params={"status": "unknown_sender"})
    assert {m["id"] for m in r.json()["items"]} == {h.id for h in held}
    r = client.post(
        f"/api/v1/inbound-mails/{held[0].id}/assign",
        headers=agent,
        json={"customer_id": customer.id},
    )
    assert r.status_code == 201, r.text
    assert r.json()["channel"] == "email" and r.json()["subject"] == "来信0"
    again = client.post(
        f"/api/v1/inbound-mails/{held[0].id}/assign",
        headers=agent,
        json={"customer_id": customer.id},
    )
    assert again.status_code == 422  # it is a ticket now
    assert (
        client.post(f"/api/v1/inbound-mails/{held[1].id}/retry", headers=agent).json()["status"]
        == "retry"
    )
    assert (
        client.post(f"/api/v1/inbound-mails/{held[2].id}/drop", headers=agent).json()["status"]
        == "dropped"
    )
    # Quarantine is for administrators.
    assert client.post(f"/api/v1/inbound-mails/{bad.id}/drop", headers=agent).status_code == 403
    assert client.post(f"/api/v1/inbound-mails/{bad.id}/retry", headers=admin).status_code == 200
    actions = db.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.object_type == "inbound_mail")
        .order_by(AuditEntry.id)
    ).all()
    assert actions == ["mail.assign", "mail.retry", "mail.drop", "mail.retry"]
    db.expire_all()
    assert db.get(InboundMail, held[0].id).ticket_id == r.json()["id"]


def test_mail_templates_api(client, db):
    unit = make_unit(db)
    admin = token_for(db, make_staff(db, unit, roles=("admin",)))
    agent = token_for(db, make_staff(db, unit, roles=("agent",)))
    listed = client.get("/api/v1/mail-templates", headers=agent).json()
    assert {(t["key"], t["locale"]) for t in listed} >= {
        ("ticket.reply", "zh_CN"),
        ("ticket.reply", "en"),
        ("ticket.acknowledged", "en"),
    }
    assert not any(t["custom"] for t in listed)
    body = {"subject": "Re: [{number}] {subject}", "body": "{body}\n\nBest regards, {unit}"}
    url = "/api/v1/mail-templates/ticket.reply/en"
    assert client.put(url, headers=agent, json=body).status_code == 403
    r = client.put(url, headers=admin, json=body)
    assert r.status_code == 200 and r.json()["custom"] is True
    bad = client.put(url, headers=admin, json={**body, "body": "{password}"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body"
    assert client.put("/api/v1/mail-templates/nope/en", headers=admin, json=body).status_code == 422
    assert client.delete(url, headers=admin).status_code == 204
    again = {
        (t["key"], t["locale"]): t
        for t in client.get("/api/v1/mail-templates", headers=admin).json()
    }
    assert again[("ticket.reply", "en")]["custom"] is False
    actions = db.scalars(
        select(AuditEntry.action).where(AuditEntry.object_type == "mail_template")
    ).all()
    assert actions == ["mail_template.update", "mail_template.reset"]
