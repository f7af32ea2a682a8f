"""Portal accounts: invitation by staff, the single-use expiring link, signing in with an
e-mail address or phone, lock-out and throttling like staff, separate sessions and CSRF."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from kefu import clock
from kefu.audit.models import AuditEntry
from kefu.customers import service as customer_service
from kefu.customers.schemas import ContactUpdate
from kefu.notifications.models import OutboxMessage
from kefu.portal.models import PortalAccount, PortalSession
from kefu.scope import SYSTEM
from tests.contact_matrix import (
    PORTAL_PASSWORD,
    give_account,
    make_contact,
    portal_login,
    portal_post,
)
from tests.factories import make_customer, make_staff, make_unit
from tests.web.helpers import post, signed_in, token_in


def setup_contact(db, **kw):
    unit = make_unit(db, "门户县", region_code="330106")
    agent = make_staff(db, unit, username="portal.agent", roles=("agent",))
    customer = make_customer(db, unit, "门户客户有限公司")
    contact = make_contact(
        db,
        customer,
        "王经理",
        kw.pop("email", "wang@kehu.cn"),
        kw.pop("phone", "13912345678"),
        **kw,
    )
    db.commit()
    return unit, agent, customer, contact


def invite_link(client, customer, contact):
    r = post(client, f"/customers/{customer.id}/contacts/{contact.id}/portal-invite")
    assert r.status_code == 200, r.text
    url = re.search(r'id="invite-url"[^>]*value="([^"]+)"', r.text).group(1)
    return url.replace("http://testserver", "")


def test_staff_invites_and_the_contact_sets_a_password_once(client, db):
    _, agent, customer, contact = setup_contact(db)
    signed_in(client, agent.username)
    page = client.get(f"/customers/{customer.id}")
    assert "邀请登录门户" in page.text and "尚未邀请" in page.text
    link = invite_link(client, customer, contact)
    # An e-mail with the link is queued for the contact, in the same transaction.
    queued = db.scalars(select(OutboxMessage).where(OutboxMessage.topic == "portal.invitation"))
    assert [m.recipient for m in queued] == [f"contact:{contact.id}"]
    assert "已邀请" in client.get(f"/customers/{customer.id}").text

    visitor = client.__class__(client.app)
    welcome = visitor.get(link)
    assert welcome.status_code == 200 and "wang@kehu.cn" in welcome.text
    bad = visitor.post(
        link,
        data={"password": "short", "confirm": "short", "csrf_token": token_in(welcome.text)},
        follow_redirects=False,
    )
    assert bad.status_code == 422 and "至少" in bad.text
    differ = visitor.post(
        link,
        data={"password": PORTAL_PASSWORD, "confirm": "x", "csrf_token": token_in(welcome.text)},
        follow_redirects=False,
    )
    assert differ.status_code == 422
    ok = visitor.post(
        link,
        data={
            "password": PORTAL_PASSWORD,
            "confirm": PORTAL_PASSWORD,
            "csrf_token": token_in(welcome.text),
        },
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/portal?notice=welcome"
    assert "kefu_portal" in ok.headers["set-cookie"] and "Path=/portal" in ok.headers["set-cookie"]
    assert visitor.get("/portal").status_code == 200
    # Single use: the link is gone now.
    again = client.__class__(client.app).get(link)
    assert again.status_code == 404 and "已过期或已被使用" in again.text
    # The audit log names the contact as the actor of the activation.
    row = db.scalars(select(AuditEntry).where(AuditEntry.action == "portal.activate")).one()
    assert row.actor_contact_id == contact.id and row.actor_id is None
    assert row.actor_name == "王经理" and row.channel == "portal"
    invite_row = db.scalars(select(AuditEntry).where(AuditEntry.action == "portal.invite")).one()
    assert invite_row.actor_id == agent.id


def test_a_new_link_replaces_the_old_and_links_expire(client, db):
    _, agent, customer, contact = setup_contact(db)
    signed_in(client, agent.username)
    first = invite_link(client, customer, contact)
    second = invite_link(client, customer, contact)
    visitor = client.__class__(client.app)
    assert visitor.get(first).status_code == 404
    assert visitor.get(second).status_code == 200
    later = clock.now() + timedelta(hours=73)
    clock.set_now(lambda: later)
    assert visitor.get(second).status_code == 404
    assert visitor.get("/portal/welcome/not-a-token").status_code == 404


def test_invitation_needs_portal_access_and_a_reachable_contact(client, db):
    _, agent, customer, contact = setup_contact(db, portal_access=False)
    signed_in(client, agent.username)
    r = post(client, f"/customers/{customer.id}/contacts/{contact.id}/portal-invite")
    assert r.status_code == 422 and "请先为该联系人开通门户访问权限" in r.text
    # Another customer's contact, out of the agent's view: 404.
    elsewhere = make_customer(db, make_unit(db, "别处", region_code="330200"))
    stranger = make_contact(db, elsewhere, "外人", "x@y.cn")
    db.commit()
    r = post(client, f"/customers/{elsewhere.id}/contacts/{stranger.id}/portal-invite")
    assert r.status_code == 404


def test_sign_in_with_email_or_phone_and_out(client, db):
    _, _, _, contact = setup_contact(db)
    give_account(db, contact)
    db.commit()
    assert (
        client.get("/portal", follow_redirects=False)
        .headers["location"]
        .startswith("/portal/login")
    )
    r = portal_login(client, "WANG@kehu.cn ")
    assert r.status_code == 303 and r.headers["location"] == "/portal"
    assert "王经理" in client.get("/portal").text
    r = portal_post(client, "/portal/logout")
    assert r.status_code == 303
    assert client.get("/portal", follow_redirects=False).status_code == 303
    r = portal_login(client, "139-1234-5678")
    assert r.status_code == 303
    wrong = portal_login(client.__class__(client.app), "wang@kehu.cn", "nope nope")
    assert wrong.status_code == 401 and "邮箱、手机号或密码错误" in wrong.text
    unknown = portal_login(client.__class__(client.app), "nobody@kehu.cn", "nope nope")
    assert unknown.status_code == 401


def test_lock_out_and_throttle_like_staff(client, db, settings):
    _, _, _, contact = setup_contact(db)
    give_account(db, contact)
    db.commit()
    for _ in range(settings.login_max_failures):
        assert portal_login(client, "wang@kehu.cn", "wrong password").status_code == 401
    locked = portal_login(client, "wang@kehu.cn")  # the right password, but locked
    assert locked.status_code == 401 and "已被锁定" in locked.text
    for _ in range(settings.login_rate_per_ip):
        portal_login(client, "ghost@kehu.cn", "x")
    assert portal_login(client, "ghost@kehu.cn", "x").status_code == 429


def test_sessions_are_separate_from_staff_and_csrf_is_checked(client, db):
    _, agent, customer, contact = setup_contact(db)
    give_account(db, contact)
    db.commit()
    portal_login(client, "wang@kehu.cn")
    # A contact's cookie opens no staff page.
    assert client.get("/", follow_redirects=False).headers["location"].startswith("/login")
    assert client.get(f"/customers/{customer.id}", follow_redirects=False).status_code == 303
    # A forged form (no or another token) is refused.
    r = client.post("/portal/logout", data={"csrf_token": "forged"}, follow_redirects=False)
    assert r.status_code == 403
    assert client.get("/portal").status_code == 200
    # A staff session opens no portal page.
    staff = client.__class__(client.app)
    signed_in(staff, agent.username)
    assert staff.get("/portal", follow_redirects=False).status_code == 303


def test_clearing_portal_access_ends_the_session(client, db):
    _, _, customer, contact = setup_contact(db)
    give_account(db, contact)
    db.commit()
    portal_login(client, "wang@kehu.cn")
    assert client.get("/portal").status_code == 200
    customer_service.update_contact(
        db, SYSTEM, customer.id, contact.id, ContactUpdate(portal_access=False)
    )
    db.commit()
    assert client.get("/portal", follow_redirects=False).status_code == 303
    assert portal_login(client, "wang@kehu.cn").status_code == 401


def test_language_follows_the_contact_and_is_kept(client, db):
    _, _, _, contact = setup_contact(db, locale="en")
    give_account(db, contact)
    db.commit()
    portal_login(client, "wang@kehu.cn")
    assert "Your requests" in client.get("/portal").text
    r = portal_post(client, "/portal/lang", {"locale": "zh_CN", "next": "/portal"})
    assert r.status_code == 303
    db.refresh(contact)
    assert contact.locale == "zh_CN"
    entry = db.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "contact.update", AuditEntry.object_id == str(contact.id)
        )
    ).one()
    assert entry.actor_contact_id == contact.id


def test_login_records_session_and_audit(client, db):
    _, _, _, contact = setup_contact(db)
    give_account(db, contact)
    db.commit()
    portal_login(client, "wang@kehu.cn")
    assert db.scalar(select(func.count()).select_from(PortalSession)) == 1
    account = db.scalars(select(PortalAccount)).one()
    assert account.last_login_at is not None and account.phone == "13912345678"
    logins = db.scalars(select(AuditEntry).where(AuditEntry.action == "portal.login")).all()
    assert [e.actor_contact_id for e in logins] == [contact.id]


def test_housekeeping_forgets_ended_portal_sessions(client, db):
    from kefu.jobs import housekeeping

    _, _, _, contact = setup_contact(db)
    give_account(db, contact)
    db.commit()
    portal_login(client, "wang@kehu.cn")
    assert housekeeping.run(db)["portal_sessions"] == 0
    later = clock.now() + timedelta(hours=13)
    clock.set_now(lambda: later)
    assert client.get("/portal", follow_redirects=False).status_code == 303  # ended
    assert housekeeping.run(db)["portal_sessions"] == 1
    assert db.scalar(select(func.count()).select_from(PortalSession)) == 0
