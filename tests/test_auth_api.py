from __future__ import annotations

from datetime import timedelta

from kefu import clock
from kefu.auth import service as auth
from kefu.scope import SYSTEM
from tests.factories import PASSWORD, make_staff, make_unit


def test_token_login_and_me(client, db):
    unit = make_unit(db)
    staff = make_staff(db, unit, username="wang.wei", roles=("supervisor",))
    db.commit()
    r = client.post("/api/v1/auth/token", json={"username": "Wang.Wei", "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["access_token"].startswith("kefu_")
    assert body["expires_at"]
    me = client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    ).json()
    assert me["staff_id"] == staff.id and me["roles"] == ["supervisor"]


def test_missing_or_bad_token_is_401_problem(client):
    r = client.get("/api/v1/units")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.get(
        "/api/v1/units", headers={"Authorization": "Bearer kefu_nope", "Accept-Language": "en"}
    )
    assert r.status_code == 401
    assert r.json()["detail"] == "The token is unknown, expired or revoked."


def test_wrong_password_and_lockout(client, db):
    unit = make_unit(db)
    make_staff(db, unit, username="li.lei")
    db.commit()
    for _ in range(5):
        r = client.post(
            "/api/v1/auth/token",
            json={"username": "li.lei", "password": "wrong!!!"},
            headers={"Accept-Language": "en"},
        )
        assert r.status_code == 401
        assert r.json()["detail"] == "Wrong username or password."
    # Locked now, even with the right password.
    r = client.post("/api/v1/auth/token", json={"username": "li.lei", "password": PASSWORD})
    assert r.status_code == 401
    assert "锁定" in r.json()["detail"]
    # After the lock expires the right password works again.
    later = clock.now() + timedelta(minutes=16)
    clock.set_now(lambda: later)
    r = client.post("/api/v1/auth/token", json={"username": "li.lei", "password": PASSWORD})
    assert r.status_code == 200


def test_rate_limit_per_address(client, db, settings):
    settings.login_rate_per_ip = 3
    for i in range(3):
        r = client.post("/api/v1/auth/token", json={"username": f"ghost{i}", "password": "x"})
        assert r.status_code == 401
    r = client.post("/api/v1/auth/token", json={"username": "ghost9", "password": "x"})
    assert r.status_code == 429


def test_token_request_refuses_unknown_fields(client):
    r = client.post("/api/v1/auth/token", json={"username": "a", "password": "b", "otp": 1})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "otp"


def test_integration_token_revocation_and_expiry(client, db):
    unit = make_unit(db)
    staff = make_staff(db, unit)
    plain, token = auth.issue_token(db, SYSTEM, staff, kind="integration", name="CRM")
    short, _ = auth.issue_token(
        db,
        SYSTEM,
        staff,
        kind="integration",
        name="tmp",
        expires_at=clock.now() + timedelta(hours=1),
    )
    db.commit()
    assert token.token_hash != plain and plain not in str(token.token_hash)
    h = {"Authorization": f"Bearer {plain}"}
    assert client.get("/api/v1/auth/me", headers=h).status_code == 200
    auth.revoke_token(db, SYSTEM, token.id)
    db.commit()
    assert client.get("/api/v1/auth/me", headers=h).status_code == 401
    later = clock.now() + timedelta(hours=2)
    clock.set_now(lambda: later)
    assert (
        client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {short}"}).status_code
        == 401
    )
