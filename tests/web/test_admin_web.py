"""Administrators' pages: the audit log and integration tokens (others get 404)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from kefu import clock
from tests.factories import make_staff, make_unit
from tests.web.helpers import HX, field_error, post, signed_in


def _admin(client, db):
    root = make_unit(db, "总部")
    admin = make_staff(db, root, roles=("admin",))
    signed_in(client, admin.username)
    return root, admin


def test_admin_pages_are_404_for_everyone_else(client, db):
    manager = make_staff(db, make_unit(db), roles=("manager",))
    signed_in(client, manager.username)
    for url in ("/audit", "/tokens"):
        assert client.get(url).status_code == 404
    assert post(client, "/tokens", {"name": "x"}).status_code == 404
    nav = client.get("/").text
    assert 'href="/audit"' not in nav and 'href="/tokens"' not in nav


def test_audit_log_shows_changes_as_before_and_after(client, db):
    _, admin = _admin(client, db)
    target = make_staff(db, make_unit(db), display_name="旧名字")
    form = {"display_name": "新名字", "email": "", "phone": "", "locale": "zh_CN"}
    assert post(client, f"/staff/{target.id}", form).status_code == 303
    page = client.get("/audit", params={"object_type": "staff", "object_id": str(target.id)})
    assert page.status_code == 200 and "<html" in page.text
    rows = page.text.split("<tbody>")[1]
    assert "修改了员工" in rows and "staff.update" in rows and admin.username in rows
    assert re.search(r"display_name</th>\s*<td class=\"before\">旧名字</td>", rows)
    assert re.search(r'<td class="after">新名字</td>', rows)
    assert f'href="/staff/{target.id}"' in rows
    fragment = client.get(
        "/audit", params={"action": "staff."}, headers={**HX, "HX-Target": "results"}
    )
    assert "<table" in fragment.text and "<form" not in fragment.text
    assert "新名字" in fragment.text
    none = client.get("/audit", params={"actor": "nobody-at-all"})
    assert "没有符合条件的变更记录。" in none.text


def test_audit_dates_are_days_of_the_viewers_zone_and_pages_follow(client, db, monkeypatch):
    # 17:30 UTC on 1 March is 01:30 on 2 March in Shanghai.
    clock.set_now(lambda: datetime(2026, 3, 1, 17, 30, tzinfo=UTC))
    _admin(client, db)
    for i in range(3):
        make_unit(db, f"审计单位{i}")
    by_day = {}
    for since, until in (("2026-03-02", "2026-03-02"), ("2026-03-01", "2026-03-01")):
        params = {"action": "unit.create", "since": since, "until": until}
        html = client.get("/audit", params=params).text
        by_day[since] = html.split('id="results"')[1].count("创建了单位")
    assert by_day == {"2026-03-02": 4, "2026-03-01": 0}  # the admin's unit and three more
    assert "2026年3月2日 01:30" in client.get("/audit").text
    bad = client.get("/audit", params={"since": "yesterday"})
    assert bad.status_code == 422
    assert field_error(bad.text, "f-filter-since") == "必须是日期（YYYY-MM-DD）。"
    monkeypatch.setattr("kefu.web.audit.PAGE_SIZE", 2)
    ids: list[str] = []
    url: str | None = "/audit?action=unit.create"
    while url:
        html = client.get(url, headers={**HX, "HX-Target": "results"}).text
        ids += re.findall(r'href="/units/(\d+)"', html)
        found = re.search(r'href="([^"]+)"[^>]*rel="next"', html)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert len(ids) == 4 and len(set(ids)) == 4


def test_tokens_are_shown_once_and_can_be_revoked(client, db):
    _admin(client, db)
    r = post(client, "/tokens", {"name": "CRM 同步", "days": "30"})
    assert r.status_code == 200
    plain = re.search(r'class="secret" type="text" readonly value="(kefu_[^"]+)"', r.text).group(1)
    assert r.headers["cache-control"] == "no-store"
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {plain}"})
    assert me.status_code == 200
    listing = client.get("/tokens").text
    assert "CRM 同步" in listing and plain not in listing and plain[:12] in listing
    token_id = re.search(r'action="/tokens/(\d+)/revoke"', listing).group(1)
    r = post(client, f"/tokens/{token_id}/revoke")
    assert r.status_code == 303 and r.headers["location"] == "/tokens?notice=revoked"
    assert "已吊销" in client.get("/tokens").text
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {plain}"})
    assert me.status_code == 401
    assert post(client, "/tokens/999999/revoke").status_code == 404


def test_token_needs_a_name(client, db):
    _admin(client, db)
    r = post(client, "/tokens", {"name": "", "days": "0"})
    assert r.status_code == 422
    assert field_error(r.text, "f-name") == "不能为空。"
    assert "kefu_" not in r.text
