"""Signing in and out of the web app, CSRF, the language switch."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kefu.auth.models import WebSession
from kefu.staff.models import Staff
from kefu.units.models import Unit
from tests.factories import PASSWORD, make_staff, make_unit
from tests.web.helpers import HX, login, post, signed_in, token_in


def test_login_sets_a_guarded_session_cookie_and_goes_to_next(client, db):
    person = make_staff(db, make_unit(db), display_name="王小明")
    r = login(client, person.username, next="/staff")
    assert r.status_code == 303
    assert r.headers["location"] == "/staff"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("kefu_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    home = client.get("/")
    assert home.status_code == 200 and "王小明" in home.text
    assert db.query(WebSession).filter_by(staff_id=person.id).count() == 1


def test_cookies_are_secure_over_https_or_when_configured(app, db, settings):
    person = make_staff(db, make_unit(db))
    with TestClient(app, base_url="https://kefu.example") as https:  # cookie_secure="auto"
        r = login(https, person.username)
        cookie = next(c for c in r.headers.get_list("set-cookie") if "kefu_session=" in c)
        assert r.status_code == 303 and "Secure" in cookie
    settings.cookie_secure = "true"
    with TestClient(app) as plain_http:
        assert "Secure" in plain_http.get("/login").headers["set-cookie"]


def test_wrong_password_is_refused_with_a_translated_message(client, db):
    person = make_staff(db, make_unit(db))
    r = login(client, person.username, "not the password")
    assert r.status_code == 401
    assert "用户名或密码错误。" in r.text
    assert f'value="{person.username}"' in r.text  # the username stays, the password does not
    assert "kefu_session" not in client.cookies
    client.cookies.set("kefu_lang", "en")
    r = login(client, person.username, "not the password")
    assert "Wrong username or password." in r.text


def test_repeated_failures_lock_the_account(client, db):
    person = make_staff(db, make_unit(db))
    for _ in range(5):
        assert login(client, person.username, "wrong-password").status_code == 401
    r = login(client, person.username, PASSWORD)  # even the right password, for now
    assert r.status_code == 401
    assert "该账号因多次登录失败已被锁定" in r.text
    db.expire_all()
    assert db.get(Staff, person.id).locked_until is not None  # the failures were committed


def test_too_many_failures_from_one_address_answer_429(client, db, settings):
    settings.login_rate_per_ip = 3
    for i in range(3):
        login(client, f"nobody{i}", "wrong-password")
    r = login(client, "nobody", "wrong-password")
    assert r.status_code == 429
    assert "您所在地址登录失败次数过多" in r.text


def test_login_without_the_csrf_token_is_refused(client, db):
    person = make_staff(db, make_unit(db))
    client.get("/login")
    r = client.post(
        "/login",
        data={"username": person.username, "password": PASSWORD},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert "表单已过期或并非来自本系统" in r.text
    r = client.post(
        "/login",
        data={"username": person.username, "password": PASSWORD, "csrf_token": "forged"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert "kefu_session" not in client.cookies


def test_signed_in_posts_need_the_session_token(client, db):
    root = make_unit(db, "总部")
    admin = make_staff(db, root, roles=("admin",))
    signed_in(client, admin.username)
    form = {"name": "伪造单位", "region_code": "330100", "parent_id": str(root.id)}
    r = client.post("/units", data=form, follow_redirects=False)
    assert r.status_code == 403
    assert "表单已过期" in r.text
    r = client.post("/units", data=form, headers={"X-CSRF-Token": "guess"}, follow_redirects=False)
    assert r.status_code == 403
    assert db.query(Unit).filter_by(name="伪造单位").count() == 0
    # HTMX sends the token as a header (hx-headers on <body>): that is accepted.
    token = token_in(client.get("/").text)
    r = client.post("/units", data=form, headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert db.query(Unit).filter_by(name="伪造单位").count() == 1


def test_get_never_changes_state(client, db):
    root = make_unit(db)
    child = make_unit(db, parent=root)
    admin = make_staff(db, root, roles=("admin",))
    signed_in(client, admin.username)
    assert client.get("/logout").status_code == 405
    assert client.get(f"/units/{child.id}/move", params={"parent_id": ""}).status_code == 405
    assert client.get("/lang", params={"locale": "en"}).status_code == 405
    assert client.get(f"/staff/{admin.id}/active", params={"active": "0"}).status_code == 405
    assert client.get("/").status_code == 200  # still signed in
    assert "kefu_lang" not in client.cookies
    db.expire_all()
    assert db.get(Unit, child.id).parent_id == root.id
    assert db.get(Staff, admin.id).is_active


def test_logout_ends_the_session_for_good(client, db):
    person = make_staff(db, make_unit(db))
    signed_in(client, person.username)
    secret = client.cookies["kefu_session"]
    r = post(client, "/logout")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert "kefu_session" not in client.cookies
    client.cookies.set("kefu_session", secret)  # replaying the old cookie does not work
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_deactivated_staff_are_signed_out_at_once(client, app, db):
    root = make_unit(db)
    agent = make_staff(db, root)
    admin = make_staff(db, root, roles=("admin",))
    signed_in(client, agent.username)
    assert client.get("/").status_code == 200
    with TestClient(app) as admin_browser:
        signed_in(admin_browser, admin.username)
        r = post(admin_browser, f"/staff/{agent.id}/active", {"active": "0"})
        assert r.status_code == 303
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert login(client, agent.username).status_code == 401


def test_signed_out_visitors_are_sent_to_login_and_back(client, db):
    person = make_staff(db, make_unit(db))
    r = client.get("/staff?q=wang", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fstaff%3Fq%3Dwang"
    r = client.get("/staff", headers=HX, follow_redirects=False)
    assert r.status_code == 401 and r.headers["HX-Redirect"].startswith("/login?next=")
    page = client.get(r.headers["HX-Redirect"])
    assert 'name="next" value="/staff"' in page.text
    r = login(client, person.username, next="/staff?q=wang")
    assert r.headers["location"] == "/staff?q=wang"


def test_next_never_leads_off_site(client, db):
    person = make_staff(db, make_unit(db))
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x"):
        r = login(client, person.username, next=target)
        assert r.headers["location"] == "/", target
        post(client, "/logout")


def test_language_switch_signed_out_sets_the_cookie(client):
    page = client.get("/login")
    assert "登录客服系统" in page.text and '<html lang="zh-CN">' in page.text
    r = client.post(
        "/lang",
        data={"locale": "en", "next": "/login", "csrf_token": token_in(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert client.cookies["kefu_lang"] == "en"
    page = client.get("/login")
    assert "Sign in to Kefu" in page.text and '<html lang="en">' in page.text
    assert client.post("/lang", data={"locale": "zh_CN"}).status_code == 403


def test_browser_language_is_used_until_someone_chooses(client):
    assert "Sign in to Kefu" in client.get("/login", headers={"Accept-Language": "en-US"}).text


def test_language_switch_signed_in_is_saved_on_the_person(client, db):
    person = make_staff(db, make_unit(db), locale="zh_CN")
    signed_in(client, person.username)
    assert "员工" in client.get("/").text
    r = post(client, "/lang", {"locale": "en", "next": "/units"})
    assert r.status_code == 303 and r.headers["location"] == "/units"
    db.expire_all()
    assert db.get(Staff, person.id).locale == "en"
    client.cookies.delete("kefu_lang")  # another browser: the saved choice still applies
    page = client.get("/")
    assert "Staff you see" in page.text and "可见员工" not in page.text
    client.cookies.set("kefu_lang", "zh_CN")  # the switch in this browser wins
    assert "可见员工" in client.get("/").text
    assert post(client, "/lang", {"locale": "fr"}).status_code == 422
