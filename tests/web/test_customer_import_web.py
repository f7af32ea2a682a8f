"""Importing customers on the web: check (a dry run with its report), then import (all or
nothing), as a page and as an HTMX fragment; agents are refused."""

from __future__ import annotations

import hashlib
import hmac
import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kefu.audit.models import AuditEntry
from kefu.customers.models import Customer
from kefu.i18n import gettext, set_locale
from tests.factories import make_staff, make_unit
from tests.test_customer_import import (
    EXPECTED_BAD,
    ZH_HEADERS,
    bad_file,
    code,
    customer_row,
    to_csv,
)
from tests.web.helpers import HX, signed_in, token_in

URL = "/customers/import"
REPORT = {**HX, "HX-Target": "report"}


def _count(db, model, *where) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _send(
    client: TestClient,
    data: bytes,
    *,
    kind: str = "customers",
    action: str = "check",
    checked: str | None = None,
    name: str = "客户.csv",
    headers: dict[str, str] | None = None,
):
    token = token_in(client.get("/").text)
    form = {"csrf_token": token, "kind": kind, "action": action}
    if checked is not None:
        form["checked"] = checked
    return client.post(
        URL,
        data=form,
        files={"file": (name, data, "text/csv")},
        headers=headers or {},
        follow_redirects=False,
    )


def _checked(html: str) -> str:
    found = re.search(r'name="checked" value="([0-9a-f]+)"', html)
    assert found, "the report offers no import"
    return found.group(1)


def _count_shown(html: str, name: str) -> int:
    found = re.search(rf'id="count-{name}">(\d+)<', html)
    assert found, name
    return int(found.group(1))


def _errors_shown(html: str) -> dict[tuple[int, str], tuple[str, str]]:
    """(row, field) → (column, reason) of the report's error table."""
    body = html.split('id="import-errors"')[1].split("</table>")[0]
    shown = {}
    for cells in re.findall(r"<tr><td[^>]*>(.*?)</td></tr>", body):
        row, column, field, reason = re.split(r"</td><td[^>]*>", cells)
        shown[(int(row), re.sub(r"</?code>", "", field))] = (column, reason)
    return shown


def _admin(db):
    root = make_unit(db, "浙江省公司", region_code="330000")
    admin = make_staff(db, root, username="boss", roles=("admin",))
    return root, admin


def test_page_fragment_link_and_menu(client, db):
    root, _ = _admin(db)
    make_staff(db, root, username="sup", roles=("supervisor",))
    signed_in(client, "boss")
    page = client.get(URL)
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    assert 'enctype="multipart/form-data"' in page.text and 'name="csrf_token"' in page.text
    assert '<a href="/customers/import" aria-current="page"' in page.text  # the menu entry
    assert "统一社会信用代码 <code>credit_code</code>" in page.text  # the documented columns
    fragment = client.get(URL, headers=HX)
    assert fragment.status_code == 200 and 'class="sidenav"' not in fragment.text
    assert 'id="import-form"' in fragment.text
    assert 'id="import-link"' in client.get("/customers").text
    client.cookies.clear()
    signed_in(client, "sup")
    assert client.get(URL).status_code == 200
    assert 'id="import-link"' in client.get("/customers").text


def test_gbk_csv_checked_then_imported(client, db):
    root, _ = _admin(db)
    signed_in(client, "boss")
    data = to_csv(
        ZH_HEADERS,
        [
            customer_row("杭州西湖龙井茶业有限公司", root, credit_code=code(1)),
            customer_row("宁波港集团", root, external_id="NB-1", is_important="是"),
        ],
        "gbk",
    )
    check = _send(client, data)
    assert check.status_code == 200, check.text
    assert check.text.startswith("<!doctype html>")
    assert _count_shown(check.text, "rows") == 2 and _count_shown(check.text, "created") == 2
    assert _count_shown(check.text, "updated") == 0 and _count_shown(check.text, "unchanged") == 0
    assert 'id="import-apply"' in check.text and 'id="import-errors"' not in check.text
    assert "再次选择" in check.text  # without HTMX the file is chosen again
    assert _count(db, Customer) == 0  # a check writes nothing
    audit_before = _count(db, AuditEntry)

    applied = _send(client, data, action="apply", checked=_checked(check.text))
    assert applied.status_code == 200, applied.text
    assert "已导入" in applied.text and 'id="import-apply"' not in applied.text
    assert _count_shown(applied.text, "created") == 2
    names = set(db.scalars(select(Customer.name)))
    assert names == {"杭州西湖龙井茶业有限公司", "宁波港集团"}
    assert _count(db, AuditEntry, AuditEntry.action == "customer.import") == 1
    assert _count(db, AuditEntry) == audit_before + 3  # two created and the summary

    # Importing it again changes nothing.
    again = _send(client, data)
    assert _count_shown(again.text, "unchanged") == 2 and _count_shown(again.text, "created") == 0


def test_htmx_check_and_apply_swap_the_report(client, db):
    root, _ = _admin(db)
    signed_in(client, "boss")
    data = to_csv(ZH_HEADERS, [customer_row("甲公司", root, credit_code=code(2))])
    check = _send(client, data, headers=REPORT)
    assert check.status_code == 200
    assert "<form" not in check.text and 'class="sidenav"' not in check.text
    assert 'id="count-rows">1<' in check.text and 'id="import-apply"' in check.text
    assert "再次选择" not in check.text  # the form still holds the chosen file
    applied = _send(client, data, action="apply", checked=_checked(check.text), headers=REPORT)
    assert applied.status_code == 200 and "<form" not in applied.text
    assert 'id="count-created">1<' in applied.text
    assert _count(db, Customer, Customer.name == "甲公司") == 1


def test_bad_rows_reported_in_chinese_and_english(client, db):
    root, _ = _admin(db)
    signed_in(client, "boss")
    data = bad_file(root)
    zh = _send(client, data)
    assert zh.status_code == 200
    assert _count_shown(zh.text, "rows") == 8 and _count_shown(zh.text, "created") == 1
    assert _count_shown(zh.text, "bad") == 7
    assert 'id="import-apply"' not in zh.text  # nothing to import while rows are bad
    by = _errors_shown(zh.text)
    assert set(by) == EXPECTED_BAD
    assert by[(3, "credit_code")][0] == "统一社会信用代码"
    set_locale("zh_CN")
    assert by[(5, "owning_unit")][1] == gettext("No such unit.") != "No such unit."
    assert "7 行有错误" in zh.text

    client.cookies.set("kefu_lang", "en")
    en = _send(client, data, headers=REPORT)
    by_en = _errors_shown(en.text)
    assert set(by_en) == EXPECTED_BAD
    assert by_en[(5, "owning_unit")][1] == "No such unit."
    assert by_en[(4, "region_code")][1] == "Unknown administrative division code."
    assert by_en[(6, "name")][1] == "This field is required."
    assert "7 rows have errors. Correct the file and check it again." in en.text
    assert _count(db, Customer) == 0


def test_apply_with_errors_writes_nothing(client, db):
    root, _ = _admin(db)
    signed_in(client, "boss")
    data = bad_file(root)
    token = token_in(client.get("/").text)
    # The digest a check would have given (a check of a bad file offers no import).
    digest = hmac.new(token.encode(), b"customers\0" + data, hashlib.sha256).hexdigest()
    audit_before = _count(db, AuditEntry)
    client.cookies.set("kefu_lang", "en")
    r = _send(client, data, action="apply", checked=digest)
    assert r.status_code == 422
    assert "Nothing was imported" in r.text
    assert "7 rows have errors; nothing was imported." in r.text
    assert len(_errors_shown(r.text)) == len(EXPECTED_BAD)
    assert _count(db, Customer) == 0  # not even the good row
    assert _count(db, AuditEntry) == audit_before


def test_a_file_changed_since_its_check_is_checked_again(client, db):
    root, _ = _admin(db)
    signed_in(client, "boss")
    first = to_csv(ZH_HEADERS, [customer_row("甲", root)])
    checked = _checked(_send(client, first).text)
    other = to_csv(ZH_HEADERS, [customer_row("乙", root)])
    r = _send(client, other, action="apply", checked=checked)
    assert r.status_code == 200 and 'id="import-apply"' in r.text
    assert _count(db, Customer) == 0
    # Nor may the kind change, nor may an import skip the check.
    assert _count_shown(_send(client, first, action="apply", kind="customers").text, "rows") == 1
    assert _count(db, Customer) == 0


def test_file_problems_are_shown_beside_the_field(client, db):
    _admin(db)
    signed_in(client, "boss")
    client.cookies.set("kefu_lang", "en")
    token = token_in(client.get("/").text)
    none = client.post(URL, data={"csrf_token": token, "kind": "customers", "action": "check"})
    assert none.status_code == 422 and "Choose a CSV or Excel file." in none.text
    old = _send(client, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, name="a.xls")
    assert old.status_code == 422 and 'id="f-import-file-error"' in old.text
    assert "Old Excel (.xls)" in old.text
    empty = _send(client, b"", headers=REPORT)
    assert empty.status_code == 422 and "<form" not in empty.text
    assert "The file is empty." in empty.text
    kind = _send(client, b"name\nx\n", kind="tickets")
    assert kind.status_code == 422 and 'id="f-import-kind-error"' in kind.text


def test_agents_are_refused_and_csrf_is_checked(client, db):
    root, _ = _admin(db)
    make_staff(db, root, username="agent", roles=("agent",))
    data = to_csv(ZH_HEADERS, [customer_row("甲", root)])
    signed_in(client, "agent")
    assert client.get(URL).status_code == 403
    assert client.get(URL, headers=HX).status_code == 403
    assert _send(client, data).status_code == 403
    assert 'id="import-link"' not in client.get("/customers").text
    assert 'href="/customers/import"' not in client.get("/").text  # no menu entry
    client.cookies.clear()
    signed_in(client, "boss")
    forged = client.post(
        URL,
        data={"csrf_token": "forged", "kind": "customers"},
        files={"file": ("a.csv", data, "text/csv")},
    )
    assert forged.status_code == 403
    assert _count(db, Customer) == 0


def test_audit_names_the_new_actions_and_links_their_objects(client, db):
    root, _ = _admin(db)
    signed_in(client, "boss")
    data = to_csv(ZH_HEADERS, [customer_row("甲", root)])
    _send(client, data, action="apply", checked=_checked(_send(client, data).text))
    customer = db.scalar(select(Customer).where(Customer.name == "甲"))
    client.cookies.set("kefu_lang", "en")
    page = client.get("/audit", params={"action": "customer.import_create"})
    assert "Customer created by an import" in page.text
    assert f'<a href="/customers/{customer.id}">customer #{customer.id}</a>' in page.text
