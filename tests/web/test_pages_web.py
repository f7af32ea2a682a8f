"""Every page works as a full page (with the frame) and as an HTMX fragment (without)."""

from __future__ import annotations

import re

from tests.factories import make_staff, make_unit
from tests.web.helpers import HX, signed_in


def test_every_page_full_and_as_fragment(client, db):
    root = make_unit(db, "总部")
    child = make_unit(db, "分部", root)
    admin = make_staff(db, root, roles=("admin",), display_name="管理员甲")
    signed_in(client, admin.username)
    pages = {
        "/": "可见单位",
        "/units": "总部",
        f"/units/{child.id}": "分部",
        f"/units/{root.id}/children": "分部",
        "/staff": "管理员甲",
        "/staff/new": "新增员工",
        f"/staff/{admin.id}": "管理员甲",
        "/audit": "审计日志",
        "/tokens": "API 令牌",
    }
    for url, text in pages.items():
        full = client.get(url)
        assert full.status_code == 200, url
        assert full.text.startswith("<!doctype html>") and 'class="sidenav"' in full.text, url
        assert text in full.text, url
        assert full.headers["cache-control"] == "no-store"
        fragment = client.get(url, headers=HX)
        assert fragment.status_code == 200, url
        assert "<html" not in fragment.text and 'class="sidenav"' not in fragment.text, url
        assert text in fragment.text, url
        # A boosted request or a history restore wants the whole page again.
        boosted = client.get(url, headers={**HX, "HX-Boosted": "true"})
        assert boosted.text.startswith("<!doctype html>"), url


def test_navigation_follows_roles_and_marks_the_current_page(client, db):
    root = make_unit(db)
    agent = make_staff(db, root, display_name="客服小张")
    signed_in(client, agent.username)
    html = client.get("/staff").text
    menu = html[html.index('class="sidenav"') : html.index("</nav>")]
    shown = re.findall(r'<a href="([^"]+)"', menu)
    assert shown == [
        "/",
        "/tickets",
        "/phrases",
        "/visits",
        "/notices",
        "/mail/held",
        "/customers",
        "/satisfaction",
        "/units",
        "/staff",
    ]
    assert '<a href="/staff" aria-current="page"' in menu
    assert "客服小张" in html and 'action="/logout"' in html
    assert re.search(r'<body class="app" hx-headers=\'\{"X-CSRF-Token": "[^"]+"\}\'>', html)
