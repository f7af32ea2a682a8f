"""Staff pages: filtered, paged list; create with inline errors; edit; (de)activate; passwords."""

from __future__ import annotations

import re

from kefu.scope import SYSTEM
from kefu.staff.models import Staff
from kefu.staff.service import get_staff
from tests.factories import make_staff, make_unit
from tests.web.helpers import HX, field_error, login, post, signed_in


def _names(html: str) -> list[str]:
    return re.findall(r'<td><a href="/staff/\d+">([^<]+)</a></td>', html)


def test_list_filters_and_pages_full_and_as_fragment(client, db, monkeypatch):
    root = make_unit(db, "总部")
    branch = make_unit(db, "分部", root)
    admin = make_staff(db, root, roles=("admin",), display_name="管理员甲")
    for i in range(5):
        make_staff(db, branch, username=f"wang{i}", display_name=f"王{i}")
    make_staff(db, branch, username="li", display_name="李主管", roles=("supervisor",))
    signed_in(client, admin.username)

    page = client.get("/staff", params={"unit_id": branch.id})
    assert page.status_code == 200 and "<html" in page.text
    assert set(_names(page.text)) == {"王0", "王1", "王2", "王3", "王4", "李主管"}
    assert _names(client.get("/staff", params={"role": "supervisor"}).text) == ["李主管"]
    assert _names(client.get("/staff", params={"q": "王3"}).text) == ["王3"]

    monkeypatch.setattr("kefu.web.staff.PAGE_SIZE", 4)
    seen: list[str] = []
    url = f"/staff?unit_id={branch.id}"
    while url:
        fragment = client.get(url, headers={**HX, "HX-Target": "results"})
        assert "<html" not in fragment.text and "<form" not in fragment.text
        seen += _names(fragment.text)
        found = re.search(r'href="([^"]+)"[^>]*rel="next"', fragment.text)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert sorted(seen) == sorted(["王0", "王1", "王2", "王3", "王4", "李主管"])
    assert len(seen) == 6


def test_list_of_inactive_staff(client, db):
    root = make_unit(db)
    admin = make_staff(db, root, roles=("admin",))
    gone = make_staff(db, root, display_name="离职者")
    gone.is_active = False
    db.flush()
    signed_in(client, admin.username)
    assert _names(client.get("/staff", params={"active": "0"}).text) == ["离职者"]
    assert "离职者" not in _names(client.get("/staff", params={"active": "1"}).text)


def test_create_staff(client, db):
    root = make_unit(db, "总部")
    manager = make_staff(db, root, roles=("manager",))
    signed_in(client, manager.username)
    form = client.get("/staff/new")
    assert form.status_code == 200 and 'value="admin"' not in form.text  # managers cannot
    r = post(
        client,
        "/staff",
        {
            "username": "Zhang.San",
            "display_name": "张三",
            "unit_id": str(root.id),
            "roles": ["agent", "supervisor"],
            "email": "",
            "phone": "13800138000",
            "locale": "en",
            "password": "a long password",
        },
    )
    assert r.status_code == 303
    person = get_staff(db, SYSTEM, db.query(Staff).filter_by(username="zhang.san").one().id)
    assert r.headers["location"] == f"/staff/{person.id}?notice=created"
    assert sorted(person.roles) == ["agent", "supervisor"] and person.email is None
    post(client, "/logout")
    assert login(client, "zhang.san", "a long password").status_code == 303


BAD = {
    "username": "A B",
    "display_name": "",
    "roles": ["cook"],
    "email": "not-an-address",
    "phone": "12",
    "locale": "zh_CN",
    "password": "short",
}


def test_bad_staff_input_is_shown_per_field_in_chinese(client, db):
    root = make_unit(db)
    signed_in(client, make_staff(db, root, roles=("admin",)).username)
    r = post(client, "/staff", {**BAD, "unit_id": str(root.id)})
    assert r.status_code == 422
    html = r.text
    assert field_error(html, "f-username").startswith("2–64 个字符")
    assert field_error(html, "f-display_name") == "不能为空。"
    assert field_error(html, "f-roles").startswith("必须是以下之一")
    assert field_error(html, "f-email") == "电子邮件地址无效。"
    assert field_error(html, "f-phone") == "电话号码无效。"
    assert field_error(html, "f-password") == "至少 8 个字符。"
    assert 'value="short"' not in html  # passwords are never sent back
    assert db.query(Staff).filter_by(display_name="").count() == 0


def test_bad_staff_input_is_shown_per_field_in_english(client, db):
    root = make_unit(db)
    signed_in(client, make_staff(db, root, roles=("admin",), locale="en").username)
    r = post(client, "/staff", {**BAD, "unit_id": "999999"})
    assert r.status_code == 422
    html = r.text
    assert field_error(html, "f-username").startswith("2–64 characters")
    assert field_error(html, "f-display_name") == "Must not be empty."
    assert field_error(html, "f-email") == "Not a valid e-mail address."
    assert field_error(html, "f-password") == "At least 8 characters."
    assert "Please correct the marked fields." in html
    r = post(
        client,
        "/staff",
        {"username": "ok.name", "display_name": "OK", "unit_id": "999999", "roles": ["agent"]},
        headers=HX,
    )
    assert r.status_code == 422 and "<html" not in r.text
    assert field_error(r.text, "f-unit_id") == "No such unit."


def test_edit_own_profile_without_manager_rights(client, db):
    root = make_unit(db)
    agent = make_staff(db, root, display_name="旧名")
    signed_in(client, agent.username)
    page = client.get(f"/staff/{agent.id}")
    assert 'name="roles"' not in page.text  # an agent cannot re-role anyone, not even self
    r = post(
        client,
        f"/staff/{agent.id}",
        {"display_name": "新名", "email": "me@example.com", "phone": "", "locale": "zh_CN"},
    )
    assert r.status_code == 303
    db.expire_all()
    assert db.get(Staff, agent.id).display_name == "新名"


def test_manager_edits_roles_and_unit(client, db):
    root = make_unit(db)
    branch = make_unit(db, parent=root)
    manager = make_staff(db, root, roles=("manager",))
    agent = make_staff(db, root)
    signed_in(client, manager.username)
    form = {"display_name": "x", "email": "", "phone": "", "locale": "zh_CN"}
    r = post(
        client,
        f"/staff/{agent.id}",
        {**form, "unit_id": str(branch.id), "roles": ["supervisor"]},
    )
    assert r.status_code == 303
    db.expire_all()
    person = get_staff(db, SYSTEM, agent.id)
    assert person.unit_id == branch.id and person.roles == ["supervisor"]
    r = post(client, f"/staff/{agent.id}", {**form, "unit_id": str(branch.id), "roles": []})
    assert r.status_code == 422
    assert field_error(r.text, "f-edit-roles") == "至少填写 1 项。"
    admin = make_staff(db, root, roles=("admin",))
    r = post(client, f"/staff/{admin.id}/password", {"password": "x" * 10, "confirm": "x" * 10})
    assert r.status_code == 403 and "只有管理员可以修改管理员。" in r.text


def test_deactivate_reactivate_and_reset_password(client, db):
    root = make_unit(db)
    admin = make_staff(db, root, roles=("admin",))
    agent = make_staff(db, root)
    signed_in(client, admin.username)
    r = post(client, f"/staff/{agent.id}/active", {"active": "0"})
    assert r.headers["location"].endswith("notice=deactivated")
    assert "已停用，其所有登录均已失效。" in client.get(r.headers["location"]).text
    db.expire_all()
    assert not db.get(Staff, agent.id).is_active
    post(client, f"/staff/{agent.id}/active", {"active": "1"})
    db.expire_all()
    assert db.get(Staff, agent.id).is_active
    r = post(client, f"/staff/{agent.id}/password", {"password": "new secret 1", "confirm": "x"})
    assert r.status_code == 422
    assert field_error(r.text, "f-pw-confirm") == "两次输入的密码不一致。"
    r = post(
        client,
        f"/staff/{agent.id}/password",
        {"password": "new secret 1", "confirm": "new secret 1"},
    )
    assert r.status_code == 303
    post(client, "/logout")
    assert login(client, agent.username, "new secret 1").status_code == 303
    r = post(client, f"/staff/{agent.id}/active", {"active": "0"})  # now signed in as agent
    assert r.status_code == 403


def test_nobody_deactivates_themselves(client, db):
    root = make_unit(db)
    admin = make_staff(db, root, roles=("admin",))
    make_staff(db, root, roles=("admin",))
    signed_in(client, admin.username)
    r = post(client, f"/staff/{admin.id}/active", {"active": "0"})
    assert r.status_code == 422 and "不能停用自己的账号。" in r.text
