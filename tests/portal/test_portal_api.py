"""The contact API (/api/v1/portal): contact tokens from the portal sign-in, the scope matrix
per endpoint, staff and contact credentials never crossing, the JSON intake with custom
fields and Idempotency-Key, the public timeline, reply, confirm, reopen and shared files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kefu import clock
from kefu.audit.models import AuditEntry
from kefu.portal.models import PortalSession
from kefu.scope import SYSTEM
from kefu.tickets import attachments
from kefu.tickets import service as tickets
from kefu.tickets.models import Ticket, TicketAttachment, TicketEvent, TicketFieldValue
from kefu.tickets.schemas import MessageIn
from tests.contact_matrix import (
    API,
    api_listed,
    api_token,
    build_customers,
    check_contacts_api,
    portal_login,
)
from tests.factories import make_staff, token_for
from tests.portal.test_portal_fields import define_fields

NOW = datetime(2026, 11, 24, 2, tzinfo=UTC)  # a Tuesday, 10:00 in Shanghai
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def tuesday():
    clock.set_now(lambda: NOW)


def mine(cs, key: str = "stranger") -> int:  # type: ignore[no-untyped-def]
    customer = {"stranger": cs.stranger, "branch_1": cs.branch_1}[key]
    return next(t for t, c in cs.tickets.items() if c.id == customer.id)


def test_contact_api_scope_matrix(client, db):
    cs = build_customers(db)
    resolved = next(iter(cs.tickets))
    tickets.change_state(db, SYSTEM, db.get(Ticket, resolved), "resolved")
    db.commit()
    check_contacts_api(
        client,
        cs,
        writes=(
            ("replies", {"body": "越界回复"}),
            ("confirm", {}),
            ("reopen", {"body": "越界重开"}),
        ),
    )
    foreign = db.scalars(select(TicketEvent).where(TicketEvent.body.contains("越界"))).all()
    assert foreign == []
    db.expire_all()
    assert db.get(Ticket, resolved).state == "resolved"
    # The filters of the pages: open, to confirm, closed.
    headers = api_token(client, cs.logins["group_admin"])
    assert api_listed(client, headers, "resolved") == {resolved} & cs.expected("group_admin")
    assert api_listed(client, headers, "closed") == set()
    assert api_listed(client, headers, "open") == cs.expected("group_admin") - {resolved}
    bad = client.get(f"{API}/tickets", params={"show": "mine"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "show"


def test_shared_files_only_and_in_scope(client, db):
    cs = build_customers(db)
    tid = mine(cs)
    theirs = next(t for t, c in cs.tickets.items() if c.id == cs.group.id)
    internal = attachments.add_attachment(db, SYSTEM, tid, "内部.png", PNG)
    shared = attachments.add_attachment(db, SYSTEM, tid, "给客户.png", PNG, public=True)
    other = attachments.add_attachment(db, SYSTEM, theirs, "集团.png", PNG, public=True)
    db.commit()
    headers = api_token(client, cs.logins["stranger"])
    listed = client.get(f"{API}/tickets/{tid}/attachments", headers=headers).json()
    assert [f["filename"] for f in listed] == ["给客户.png"]
    assert listed[0]["url"] == f"/api/v1/portal/tickets/{tid}/attachments/{shared.id}"
    assert "uploaded_by" not in listed[0]  # no staff usernames
    got = client.get(listed[0]["url"], headers=headers)
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-security-policy"] == "sandbox"
    for url in (
        f"{API}/tickets/{tid}/attachments/{internal.id}",
        f"{API}/tickets/{theirs}/attachments/{other.id}",
        f"{API}/tickets/{tid}/attachments/{other.id}",
    ):
        assert client.get(url, headers=headers).status_code == 404, url
    # The file is in the timeline too.
    detail = client.get(f"{API}/tickets/{tid}", headers=headers).json()
    files = [e["file"]["filename"] for e in detail["timeline"] if e["kind"] == "file"]
    assert files == ["给客户.png"]


def test_token_sign_in_and_out(client, db, settings):
    cs = build_customers(db)
    wrong = client.post(f"{API}/token", json={"login": cs.logins["stranger"], "password": "x"})
    assert wrong.status_code == 401 and wrong.headers["content-type"].startswith(PROBLEM)
    assert wrong.headers["www-authenticate"] == "Bearer"
    missing = client.post(f"{API}/token", json={"login": cs.logins["stranger"]})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "password"
    r = client.post(
        f"{API}/token", json={"login": cs.logins["stranger"].upper(), "password": "portal pass 42"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["access_token"].startswith("kefuc_")
    expires = datetime.fromisoformat(body["expires_at"])
    assert expires == NOW + timedelta(minutes=settings.access_token_minutes)
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    me = client.get(f"{API}/me", headers=headers).json()
    assert me["contact_id"] == cs.contacts["stranger"].id
    assert me["customer"] == {"id": cs.stranger.id, "name": cs.stranger.name}
    assert [c["id"] for c in me["customers"]] == [cs.stranger.id]
    admin = client.get(f"{API}/me", headers=api_token(client, cs.logins["group_admin"])).json()
    assert admin["group_admin"] is True
    assert {c["id"] for c in admin["customers"]} == {cs.group.id, cs.branch_1.id, cs.branch_2.id}
    # Kept as a portal session of kind api, only its digest; the sign-in is audited.
    rows = db.scalars(select(PortalSession).where(PortalSession.kind == "api")).all()
    assert len(rows) == 2 and all(body["access_token"] not in r.id for r in rows)
    logins = db.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "portal.login",
            AuditEntry.actor_contact_id == cs.contacts["stranger"].id,
        )
    ).all()
    assert any((e.changes or {}).get("kind", {}).get("after") == "api" for e in logins)
    # Signing out ends the token at once.
    assert client.delete(f"{API}/token", headers=headers).status_code == 204
    gone = client.get(f"{API}/me", headers=headers)
    assert gone.status_code == 401 and gone.headers["content-type"].startswith(PROBLEM)
    # A token expires; clearing portal access ends it at the next request.
    headers = api_token(client, cs.logins["stranger"])
    clock.set_now(lambda: NOW + timedelta(minutes=settings.access_token_minutes + 1))
    assert client.get(f"{API}/me", headers=headers).status_code == 401
    clock.set_now(lambda: NOW)
    headers = api_token(client, cs.logins["stranger"])
    contact = cs.contacts["stranger"]
    contact.portal_access = False
    db.commit()
    assert client.get(f"{API}/tickets", headers=headers).status_code == 401


def test_staff_and_contact_credentials_never_cross(app, client, db):
    cs = build_customers(db)
    staff = make_staff(db, cs.unit, "agent_x", roles=["admin"])
    staff_headers = token_for(db, staff)
    contact_headers = api_token(client, cs.logins["stranger"])
    tid = mine(cs)
    # A staff token opens no contact endpoint, whatever its roles.
    for method, url in (
        ("GET", f"{API}/me"),
        ("GET", f"{API}/tickets"),
        ("GET", f"{API}/tickets/{tid}"),
        ("GET", f"{API}/tickets/{tid}/attachments"),
        ("GET", f"{API}/categories"),
        ("POST", f"{API}/tickets/{tid}/replies"),
        ("POST", f"{API}/tickets/{tid}/confirm"),
        ("POST", f"{API}/tickets/{tid}/reopen"),
        ("POST", f"{API}/tickets"),
        ("POST", f"{API}/tickets/{tid}/attachments"),
        ("DELETE", f"{API}/token"),
    ):
        r = client.request(method, url, headers=staff_headers, json={})
        assert r.status_code == 401, f"staff {method} {url}: {r.status_code}"
    refused = client.get(f"{API}/tickets", headers={**staff_headers, "Accept-Language": "en"})
    assert "staff token" in refused.json()["detail"]
    # A contact token opens no staff endpoint.
    for url in (
        "/api/v1/tickets",
        f"/api/v1/tickets/{tid}",
        f"/api/v1/tickets/{tid}/events",
        "/api/v1/customers",
        "/api/v1/auth/me",
        "/api/v1/categories",
    ):
        r = client.get(url, headers=contact_headers)
        assert r.status_code == 401, f"contact GET {url}: {r.status_code}"
        assert "联系人接口" in r.json()["detail"], url  # named as a contact's token
    made = client.post(
        "/api/v1/tickets",
        headers={**contact_headers, "Accept-Language": "en"},
        json={"customer_id": cs.stranger.id, "category_code": "other", "subject": "x"},
    )
    assert made.status_code == 401
    assert "contact token" in made.json()["detail"]
    r = client.get("/api/v1/tickets", headers={"Authorization": "Bearer kefu_not-a-token"})
    assert r.status_code == 401 and "联系人" not in r.json()["detail"]
    # Neither does the portal's browser cookie, nor the token as that cookie.
    browser = TestClient(app)
    portal_login(browser, cs.logins["stranger"])
    cookie = browser.cookies.get("kefu_portal")
    assert cookie
    r = client.get(f"{API}/tickets", headers={"Authorization": f"Bearer {cookie}"})
    assert r.status_code == 401
    r = client.get(f"{API}/tickets", cookies={"kefu_portal": cookie})
    assert r.status_code == 401
    token = contact_headers["Authorization"].split()[1]
    stray = TestClient(app)
    stray.cookies.set("kefu_portal", token)
    page = stray.get("/portal", follow_redirects=False)
    assert page.status_code in (303, 307) and "/portal/login" in page.headers["location"]


def test_submit_json_with_custom_fields_and_idempotency(client, db):
    cs = build_customers(db)
    define_fields(db)
    headers = api_token(client, cs.logins["branch_1"])
    cats = client.get(f"{API}/categories", headers=headers).json()
    fault = next(c for c in cats if c["code"] == "fault_repair")
    assert [f["key"] for f in fault["fields"]] == ["line_id", "loss_db", "fibre_kind"]
    assert fault["fields"][2]["choices"][0] == {"value": "sm", "label": "单模"}
    body = {
        "category_code": "fault_repair",
        "subject": "光纤中断",
        "description": "从早上开始\n<b>急</b>",
        "custom_fields": {"line_id": "", "loss_db": 3.5, "fibre_kind": "mm"},
    }
    key = {"Idempotency-Key": "req-1"}
    r = client.post(f"{API}/tickets", json=body, headers={**headers, **key})
    assert r.status_code == 201, r.text
    made = r.json()
    assert r.headers["location"] == f"/api/v1/portal/tickets/{made['id']}"
    assert made["state"] == "new" and made["state_label"] == "已受理"
    assert made["customer_id"] == cs.branch_1.id and made["category"]
    assert "assignee_id" not in made and "owning_unit_id" not in made
    ticket = db.get(Ticket, made["id"])
    assert ticket.channel == "portal" and ticket.contact_id == cs.contacts["branch_1"].id
    assert ticket.custom_fields == {"loss_db": 3.5, "fibre_kind": "mm"}
    assert "<b>" not in ticket.description
    assert db.scalar(select(func.count()).where(TicketFieldValue.ticket_id == ticket.id)) == 2
    # A retry answers the first ticket; the same key with another body is refused.
    again = client.post(f"{API}/tickets", json=body, headers={**headers, **key})
    assert again.status_code == 201 and again.json()["id"] == made["id"]
    assert again.headers["idempotent-replayed"] == "true"
    changed = client.post(
        f"{API}/tickets", json={**body, "subject": "别的"}, headers={**headers, **key}
    )
    assert changed.status_code == 422
    # Another contact's key is their own.
    other = client.post(
        f"{API}/tickets", json=body, headers={**api_token(client, cs.logins["stranger"]), **key}
    )
    assert other.status_code == 201 and other.json()["id"] != made["id"]
    assert other.json()["customer_id"] == cs.stranger.id
    # A bad value is named, nothing is written.
    count = db.scalar(select(func.count()).select_from(Ticket))
    bad = client.post(
        f"{API}/tickets",
        json={**body, "custom_fields": {"loss_db": "很多", "nope": "x"}},
        headers=headers,
    )
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM)
    fields_named = {e["field"] for e in bad.json()["errors"]}
    assert fields_named == {"custom_fields.loss_db", "custom_fields.nope"}
    unknown = client.post(f"{API}/tickets", json={**body, "priority": "urgent"}, headers=headers)
    assert unknown.status_code == 422  # a contact sets no priority
    # Another customer: refused, naming customer_id; a group administrator may name a branch.
    foreign = client.post(
        f"{API}/tickets", json={**body, "customer_id": cs.stranger.id}, headers=headers
    )
    assert foreign.status_code == 422
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Ticket)) == count
    admin = api_token(client, cs.logins["group_admin"])
    branch = client.post(
        f"{API}/tickets", json={**body, "customer_id": cs.branch_2.id}, headers=admin
    )
    assert branch.status_code == 201 and branch.json()["customer_id"] == cs.branch_2.id
    created = db.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "ticket.create", AuditEntry.object_id == str(made["id"])
        )
    ).one()
    assert created.actor_contact_id == cs.contacts["branch_1"].id and created.channel == "portal"


def test_timeline_reply_confirm_and_reopen(client, db):
    cs = build_customers(db)
    tid = mine(cs)
    tickets.add_message(db, SYSTEM, tid, MessageIn(body="内部备注：客户难缠", internal=True))
    tickets.add_message(db, SYSTEM, tid, MessageIn(body="请提供型号"))
    tickets.change_state(db, SYSTEM, db.get(Ticket, tid), "pending")
    db.commit()
    headers = {**api_token(client, cs.logins["stranger"]), "Accept-Language": "en"}
    detail = client.get(f"{API}/tickets/{tid}", headers=headers)
    text = detail.text
    assert "请提供型号" in text and "客户难缠" not in text and "system" not in text
    assert detail.json()["state_label"] == "Waiting for your answer"
    # Reply: the pending request opens again.
    r = client.post(f"{API}/tickets/{tid}/replies", json={"body": "型号是 X1"}, headers=headers)
    assert r.status_code == 201 and r.headers["location"] == f"/api/v1/portal/tickets/{tid}"
    kinds = [e["kind"] for e in r.json()["timeline"]]
    assert kinds[-2:] == ["message", "state"]  # the reply, then in progress again
    last = r.json()["timeline"][-2]
    assert last["from_customer"] and "型号是 X1" in last["body"]
    assert last["author"] == cs.contacts["stranger"].name
    assert r.json()["state"] == "open"
    empty = client.post(f"{API}/tickets/{tid}/replies", json={"body": ""}, headers=headers)
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "body"
    # Confirm only once resolved; then closed, and replies are refused.
    early = client.post(f"{API}/tickets/{tid}/confirm", headers=headers)
    assert early.status_code == 422 and early.json()["errors"][0]["field"] == "state"
    tickets.change_state(db, SYSTEM, db.get(Ticket, tid), "resolved")
    db.commit()
    assert client.get(f"{API}/tickets/{tid}", headers=headers).json()["may_reopen"] is True
    done = client.post(f"{API}/tickets/{tid}/confirm", headers=headers)
    assert done.status_code == 200 and done.json()["state"] == "closed"
    late = client.post(f"{API}/tickets/{tid}/replies", json={"body": "还有"}, headers=headers)
    assert late.status_code == 422 and late.json()["errors"][0]["field"] == "body"
    # Reopen: within the window only.
    other = next(t for t, c in cs.tickets.items() if c.id == cs.stranger.id and t != tid)
    tickets.change_state(db, SYSTEM, db.get(Ticket, other), "resolved")
    db.commit()
    back = client.post(f"{API}/tickets/{other}/reopen", json={"body": "还是不行"}, headers=headers)
    assert back.status_code == 200 and back.json()["state"] == "open"
    clock.set_now(lambda: NOW + timedelta(minutes=1))
    tickets.change_state(db, SYSTEM, db.get(Ticket, other), "resolved")
    db.commit()
    clock.set_now(lambda: NOW + timedelta(days=8))
    headers = {**api_token(client, cs.logins["stranger"]), "Accept-Language": "en"}
    assert client.get(f"{API}/tickets/{other}", headers=headers).json()["may_reopen"] is False
    refused = client.post(f"{API}/tickets/{other}/reopen", json={"body": "又坏了"}, headers=headers)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body"
    db.expire_all()
    assert db.get(Ticket, other).state == "resolved"


def test_the_openapi_document_describes_the_contact_api(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    for path in (
        "/portal/token",
        "/portal/me",
        "/portal/categories",
        "/portal/tickets",
        "/portal/tickets/{ticket_id}",
        "/portal/tickets/{ticket_id}/replies",
        "/portal/tickets/{ticket_id}/confirm",
        "/portal/tickets/{ticket_id}/reopen",
        "/portal/tickets/{ticket_id}/attachments",
        "/portal/tickets/{ticket_id}/attachments/{attachment_id}",
    ):
        assert path in paths, path
    assert "contact" in paths["/portal/tickets"]["get"]["description"]
    post = paths["/portal/tickets"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in post["parameters"]}


def test_share_a_file(client, db, settings):
    cs = build_customers(db)
    tid = mine(cs)
    theirs = next(t for t, c in cs.tickets.items() if c.id == cs.group.id)
    headers = api_token(client, cs.logins["stranger"])
    r = client.post(
        f"{API}/tickets/{tid}/attachments",
        files={"file": ("铭牌.png", PNG, "image/png")},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert (
        r.headers["location"]
        == body["url"]
        == (f"/api/v1/portal/tickets/{tid}/attachments/{body['id']}")
    )
    assert client.get(body["url"], headers=headers).content == PNG
    detail = client.get(f"{API}/tickets/{tid}", headers=headers).json()
    assert detail["state"] == "new"  # a file alone changes no state
    shared = [e for e in detail["timeline"] if e["kind"] == "file"]
    assert [(e["file"]["filename"], e["from_customer"]) for e in shared] == [("铭牌.png", True)]
    # Out of scope: 404, nothing stored; bad kinds and closed requests: 422 naming file.
    count = db.scalar(select(func.count()).select_from(TicketAttachment))
    away = client.post(
        f"{API}/tickets/{theirs}/attachments",
        files={"file": ("x.png", PNG, "image/png")},
        headers=headers,
    )
    assert away.status_code == 404
    lie = client.post(
        f"{API}/tickets/{tid}/attachments",
        files={"file": ("说明.pdf", PNG, "application/pdf")},
        headers=headers,
    )
    assert lie.status_code == 422 and lie.json()["errors"][0]["field"] == "file"
    tickets.change_state(db, SYSTEM, db.get(Ticket, tid), "resolved")
    tickets.change_state(db, SYSTEM, db.get(Ticket, tid), "closed")
    db.commit()
    closed = client.post(
        f"{API}/tickets/{tid}/attachments",
        files={"file": ("再来.png", PNG, "image/png")},
        headers=headers,
    )
    assert closed.status_code == 422 and closed.json()["errors"][0]["field"] == "file"
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(TicketAttachment)) == count
    staff = token_for(db, make_staff(db, cs.unit, "agent_y", roles=["admin"]))
    other = next(t for t, c in cs.tickets.items() if c.id == cs.stranger.id and t != tid)
    refused = client.post(
        f"{API}/tickets/{other}/attachments",
        files={"file": ("x.png", PNG, "image/png")},
        headers=staff,
    )
    assert refused.status_code == 401
