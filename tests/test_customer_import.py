"""Importing customers, contacts and revenue from CSV and Excel (API, service and CLI)."""

from __future__ import annotations

import csv
import io
import os
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import typer
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from kefu import schema, tree
from kefu.audit.models import AuditEntry
from kefu.config import use_settings
from kefu.customers import import_format, importing
from kefu.customers.models import Contact, Customer, RevenueRecord
from kefu.customers.policy import credit_check_char
from kefu.db import make_engine, make_sessionmaker, unit_of_work
from kefu.errors import Forbidden, Invalid
from kefu.i18n import set_locale
from kefu.scope import SYSTEM, Viewer
from tests.conftest import PG_URL
from tests.factories import make_customer, make_staff, make_unit, token_for
from tests.scope_matrix import build_org

URL = "/api/v1/customers/import"
ZH_HEADERS = [
    "客户名称",
    "简称",
    "统一社会信用代码",
    "外部编号",
    "上级客户(信用代码或外部编号)",
    "行业",
    "行政区划代码",
    "归属单位",
    "客户经理",
    "重要客户",
    "集团客户",
    "潜在客户",
    "状态",
    "备注",
]
EN_HEADERS = [
    "name",
    "short_name",
    "credit_code",
    "external_id",
    "parent",
    "industry",
    "region_code",
    "owning_unit",
    "account_manager",
    "is_important",
    "is_group",
    "is_potential",
    "status",
    "notes",
]


def code(n: int) -> str:
    """A valid unified social credit code, different for each n."""
    body = f"91330100MA{n:07d}"
    return body + credit_check_char(body)


def bad_check(valid: str) -> str:
    return valid[:17] + ("0" if valid[17] != "0" else "1")


def to_csv(headers: list[str], rows: list[list[Any]], encoding: str = "utf-8") -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buf.getvalue().encode(encoding)


def customer_row(name: str, unit: Any, **kw: Any) -> list[Any]:
    """One row under ZH_HEADERS / EN_HEADERS (same order)."""
    values = {
        "short_name": "",
        "credit_code": "",
        "external_id": "",
        "parent": "",
        "industry": "",
        "region_code": "330106",
        "owning_unit": unit.id if hasattr(unit, "id") else unit,
        "account_manager": "",
        "is_important": "否",
        "is_group": "否",
        "is_potential": "",
        "status": "正常",
        "notes": "",
    }
    values.update(kw)
    return [name, *(values[h] for h in EN_HEADERS[1:])]


def upload(
    client, headers, data: bytes, *, kind="customers", dry_run=True, name="客户.csv", lang=None
):
    h = dict(headers)
    if lang:
        h["Accept-Language"] = lang
    return client.post(
        URL,
        headers=h,
        files={"file": (name, data, "text/csv")},
        data={"kind": kind, "dry_run": "true" if dry_run else "false"},
    )


def count(db, model, *where) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def admin_headers(db):
    root = make_unit(db, "省公司")
    admin = make_staff(db, root, roles=("admin",))
    return root, token_for(db, admin)


# --- formats and encodings ------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_in_each_encoding_imports_chinese_text(client, db, encoding):
    root, h = admin_headers(db)
    data = to_csv(
        ZH_HEADERS,
        [
            customer_row(
                "杭州西湖龙井茶业有限公司", root, credit_code=code(1), short_name="龙井茶业"
            ),
            customer_row("宁波港集团", root, external_id="NB-1", is_important="是", status="休眠"),
        ],
        encoding,
    )
    if encoding == "utf-8-sig":
        assert data.startswith(b"\xef\xbb\xbf")
    dry = upload(client, h, data)
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert body == {
        "dry_run": True,
        "kind": "customers",
        "rows": 2,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "applied": False,
        "errors": [],
    }
    assert count(db, Customer) == 0  # a dry run writes nothing
    r = upload(client, h, data, dry_run=False)
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 2 and r.json()["applied"] is True
    db.expire_all()
    got = {c.name: c for c in db.scalars(select(Customer))}
    assert set(got) == {"杭州西湖龙井茶业有限公司", "宁波港集团"}
    assert got["杭州西湖龙井茶业有限公司"].short_name == "龙井茶业"
    assert got["杭州西湖龙井茶业有限公司"].credit_code == code(1)
    assert got["宁波港集团"].is_important and got["宁波港集团"].status == "dormant"


def test_english_headers_and_word_values(client, db):
    root, h = admin_headers(db)
    manager = make_staff(db, root, username="li.lei", roles=("agent",))
    data = to_csv(
        EN_HEADERS,
        [
            customer_row(
                "Zhejiang Energy Co.",
                root.name,
                credit_code=code(2).lower(),  # codes are case-insensitive
                industry="Energy",
                account_manager="Li.Lei",
                is_important="yes",
                is_group="TRUE",
                is_potential="1",
                status="lost",
                notes="from the CRM",
            )
        ],
    )
    r = upload(client, h, data, dry_run=False)
    assert r.status_code == 200 and r.json()["errors"] == [], r.text
    c = db.scalars(select(Customer)).one()
    assert (c.credit_code, c.industry_code, c.owning_unit_id, c.account_manager_id) == (
        code(2),
        "energy",
        root.id,
        manager.id,
    )
    assert (c.is_important, c.is_group, c.is_potential, c.status, c.notes) == (
        True,
        True,
        True,
        "lost",
        "from the CRM",
    )


def test_xlsx_made_with_openpyxl(client, db):
    root, h = admin_headers(db)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["序号", *ZH_HEADERS])  # a numbering column is ignored
    sheet.append([1, *customer_row("温州鞋业集团", root, credit_code=code(3), is_group="是")])
    row = customer_row("温州鞋业分公司", root, parent=code(3))
    row[EN_HEADERS.index("region_code")] = 330302  # a number cell, as Excel keeps codes
    row[EN_HEADERS.index("owning_unit")] = root.id
    sheet.append([2, *row])
    buf = io.BytesIO()
    book.save(buf)
    # Named .dat on purpose: the format is found by the content.
    r = upload(client, h, buf.getvalue(), dry_run=False, name="upload.dat")
    assert r.status_code == 200 and r.json()["created"] == 2, r.text
    head = db.scalars(select(Customer).where(Customer.name == "温州鞋业集团")).one()
    branch = db.scalars(select(Customer).where(Customer.name == "温州鞋业分公司")).one()
    assert branch.region_code == "330302"
    assert branch.parent_id == head.id
    assert branch.path == tree.child_path(head.path, branch.id) and branch.depth == 1


# --- bad rows -------------------------------------------------------------------------------


def bad_file(root) -> bytes:
    return to_csv(
        ZH_HEADERS,
        [
            customer_row("好客户", root, credit_code=code(10)),  # row 2: good
            customer_row("校验位错", root, credit_code=bad_check(code(11))),  # row 3
            customer_row("区划错", root, region_code="990000"),  # row 4
            customer_row("单位错", root, owning_unit="不存在的单位"),  # row 5
            customer_row("", root, is_important="也许", status="gone"),  # row 6
            customer_row("行业错", root, industry="占星"),  # row 7
            customer_row("经理错", root, account_manager="nobody"),  # row 8
            customer_row("上级错", root, parent="NOPE-1"),  # row 9
        ],
    )


EXPECTED_BAD = {
    (3, "credit_code"),
    (4, "region_code"),
    (5, "owning_unit"),
    (6, "name"),
    (6, "is_important"),
    (6, "status"),
    (7, "industry"),
    (8, "account_manager"),
    (9, "parent"),
}


def test_dry_run_reports_every_bad_row_in_english_and_chinese(client, db):
    root, h = admin_headers(db)
    data = bad_file(root)
    en = upload(client, h, data, lang="en")
    assert en.status_code == 200, en.text
    body = en.json()
    assert body["rows"] == 8 and body["created"] == 1  # only the good row would be made
    assert {(e["row"], e["field"]) for e in body["errors"]} == EXPECTED_BAD
    by = {(e["row"], e["field"]): e for e in body["errors"]}
    assert "check digit" in by[(3, "credit_code")]["message"]
    assert by[(3, "credit_code")]["column"] == "统一社会信用代码"
    assert by[(4, "region_code")]["message"] == "Unknown administrative division code."
    assert by[(5, "owning_unit")]["message"] == "No such unit."
    assert by[(6, "name")]["message"] == "This field is required."
    assert by[(7, "industry")]["message"] == "Unknown industry."
    assert by[(9, "parent")]["message"] == "No such customer."
    zh = upload(client, h, data, lang="zh-CN").json()
    assert {(e["row"], e["field"]) for e in zh["errors"]} == EXPECTED_BAD
    for e in zh["errors"]:
        assert e["message"] != by[(e["row"], e["field"])]["message"], e  # translated
        assert any("\u4e00" <= ch <= "\u9fff" for ch in e["message"]), e
    assert count(db, Customer) == 0


def test_apply_is_all_or_nothing(client, db):
    root, h = admin_headers(db)
    audit_before = count(db, AuditEntry)
    r = upload(client, h, bad_file(root), dry_run=False, lang="en")
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == 422 and problem["type"] == "/problems/validation"
    assert "nothing was imported" in problem["detail"]
    assert {(e["row"], e["field"]) for e in problem["errors"]} == EXPECTED_BAD
    assert count(db, Customer) == 0  # not even the good row
    assert count(db, AuditEntry) == audit_before
    # The same rows without the bad ones go in.
    good = to_csv(ZH_HEADERS, [customer_row("好客户", root, credit_code=code(10))])
    assert upload(client, h, good, dry_run=False).status_code == 200
    assert count(db, Customer) == 1


def test_reimport_updates_instead_of_duplicating(client, db):
    root, h = admin_headers(db)
    other = make_unit(db, "另一单位", root)
    first = to_csv(
        ZH_HEADERS,
        [
            customer_row("甲公司", root, credit_code=code(20)),
            customer_row("乙公司", root, external_id="CRM-7"),
            customer_row("丙公司", root, credit_code=code(21), external_id="CRM-8"),
        ],
    )
    assert upload(client, h, first, dry_run=False).json()["created"] == 3
    ids = {c.name: c.id for c in db.scalars(select(Customer))}
    again = upload(client, h, first, dry_run=False).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)
    changed = to_csv(
        ZH_HEADERS,
        [
            customer_row("甲公司（新名）", root, credit_code=code(20), is_important="是"),
            customer_row("乙公司", other, external_id="CRM-7"),
            customer_row("丙公司", root, credit_code=code(21), external_id="CRM-8"),
        ],
    )
    dry = upload(client, h, changed).json()
    assert (dry["created"], dry["updated"], dry["unchanged"]) == (0, 2, 1)
    r = upload(client, h, changed, dry_run=False).json()
    assert (r["created"], r["updated"], r["unchanged"]) == (0, 2, 1)
    assert count(db, Customer) == 3
    jia = db.get(Customer, ids["甲公司"])
    assert jia.name == "甲公司（新名）" and jia.is_important
    assert db.get(Customer, ids["乙公司"]).owning_unit_id == other.id
    entry = db.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "customer.import_update",
            AuditEntry.object_id == str(ids["甲公司"]),
        )
    ).one()
    assert entry.changes == {
        "name": {"before": "甲公司", "after": "甲公司（新名）"},
        "is_important": {"before": False, "after": True},
    }
    creates = count(db, AuditEntry, AuditEntry.action == "customer.import_create")
    summaries = count(db, AuditEntry, AuditEntry.action == "customer.import")
    assert (creates, summaries) == (3, 3)


def test_codes_that_clash(client, db):
    root, h = admin_headers(db)
    make_customer(db, root, "已有甲", credit_code=code(30))
    make_customer(db, root, "已有乙", external_id="X-2")
    db.commit()
    data = to_csv(
        ZH_HEADERS,
        [
            customer_row("新甲", root, credit_code=code(31)),  # row 2
            customer_row("重复", root, credit_code=code(31)),  # row 3: same code as row 2
            customer_row("两家", root, credit_code=code(30), external_id="X-2"),  # row 4
        ],
    )
    errors = upload(client, h, data, lang="en").json()["errors"]
    assert {(e["row"], e["field"]) for e in errors} == {(3, "credit_code"), (4, "external_id")}
    assert "Row 2" in next(e["message"] for e in errors if e["row"] == 3)


# --- the group tree -------------------------------------------------------------------------


def test_parent_in_the_same_file_in_any_order(client, db):
    root, h = admin_headers(db)
    existing = make_customer(db, root, "已有集团", external_id="GRP-0", is_group=True)
    db.commit()
    data = to_csv(
        ZH_HEADERS,
        [
            # A branch before its group head, a grandchild before both.
            customer_row("孙公司", root, external_id="C-3", parent="C-2"),
            customer_row("分公司", root, external_id="C-2", parent=code(40)),
            customer_row("集团总部", root, credit_code=code(40), is_group="是"),
            customer_row("已有集团的分公司", root, external_id="C-4", parent="GRP-0"),
        ],
    )
    r = upload(client, h, data, dry_run=False)
    assert r.status_code == 200 and r.json()["created"] == 4, r.text
    db.expire_all()
    by = {c.name: c for c in db.scalars(select(Customer))}
    head, branch, grand = by["集团总部"], by["分公司"], by["孙公司"]
    assert head.parent_id is None and head.path == tree.child_path(None, head.id)
    assert branch.parent_id == head.id and branch.path == tree.child_path(head.path, branch.id)
    assert grand.parent_id == branch.id and grand.path == tree.child_path(branch.path, grand.id)
    assert (head.depth, branch.depth, grand.depth) == (0, 1, 2)
    other = by["已有集团的分公司"]
    assert other.path == tree.child_path(existing.path, other.id) and other.depth == 1


def test_cycles_are_refused(client, db):
    root, h = admin_headers(db)
    loop = to_csv(
        ZH_HEADERS,
        [
            customer_row("甲", root, external_id="A", parent="B"),
            customer_row("乙", root, external_id="B", parent="C"),
            customer_row("丙", root, external_id="C", parent="A"),
            customer_row("丁", root, external_id="D", parent="D"),
            customer_row("戊", root, external_id="E", parent="A"),  # hangs off the loop
        ],
    )
    errors = upload(client, h, loop, lang="en").json()["errors"]
    assert {(e["row"], e["field"]) for e in errors} == {
        (2, "parent"),
        (3, "parent"),
        (4, "parent"),
        (5, "parent"),
    }
    assert "2, 3, 4" in next(e["message"] for e in errors if e["row"] == 2)
    assert upload(client, h, loop, dry_run=False).status_code == 422
    assert count(db, Customer) == 0

    # A loop through customers already in the database: the head under its own branch.
    head = make_customer(db, root, "集团", external_id="H", is_group=True)
    make_customer(db, root, "分部", parent=head, external_id="K")
    db.commit()
    data = to_csv(ZH_HEADERS, [customer_row("集团", root, external_id="H", parent="K")])
    errors = upload(client, h, data).json()["errors"]
    assert [(e["row"], e["field"]) for e in errors] == [(2, "parent")]


def test_reimport_moves_a_customer_with_its_branches(client, db):
    root, h = admin_headers(db)
    head = make_customer(db, root, "旧集团", external_id="OLD")
    branch = make_customer(db, root, "旧分部", parent=head, external_id="OLD-1")
    leaf = make_customer(db, root, "旧网点", parent=branch)
    db.commit()
    data = to_csv(
        ZH_HEADERS,
        [
            customer_row("新集团", root, external_id="NEW", is_group="是"),
            customer_row("旧分部", root, external_id="OLD-1", parent="NEW"),
        ],
    )
    r = upload(client, h, data, dry_run=False)
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["updated"]) == (1, 1)
    db.expire_all()
    new = db.scalars(select(Customer).where(Customer.external_id == "NEW")).one()
    branch, leaf = db.get(Customer, branch.id), db.get(Customer, leaf.id)
    assert branch.parent_id == new.id and branch.path == tree.child_path(new.path, branch.id)
    assert leaf.path == tree.child_path(branch.path, leaf.id) and leaf.depth == 2
    entry = db.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "customer.import_update", AuditEntry.object_id == str(branch.id)
        )
    ).one()
    assert entry.changes == {"parent_id": {"before": head.id, "after": new.id}}


# --- whole-file problems --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name", "needle"),
    [
        ("客户名称,行政区划代码\n甲,330106\n".encode("utf-16"), "a.csv", "UTF-16"),
        ("客户名称,行政区划代码\n甲,330106\n".encode("utf-16-le"), "a.csv", "UTF-16"),
        (bytes(range(256)) * 8, "a.csv", "neither"),
        (b"\x89PNG\r\n\x1a\n" + os.urandom(512), "a.csv", "neither"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "a.xls", ".xls"),
        (b"PK\x03\x04" + b"\x00" * 100, "a.xlsx", "zip"),
        (b"name,region\n", "a.csv", "no data rows"),
        (b"", "a.csv", "empty"),
        (b"\xef\xbb\xbf\r\n \r\n", "a.csv", "empty"),
        (b"just,some\nother,words\n", "a.csv", "Expected headers"),
        (b"%PDF-1.7 hello", "a.xlsx", "not an Excel"),
    ],
)
def test_unreadable_files_are_refused_naming_the_file(client, db, data, name, needle):
    _, h = admin_headers(db)
    r = upload(client, h, data, name=name, lang="en", dry_run=False)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    errors = r.json()["errors"]
    assert [e["field"] for e in errors] == ["file"]
    assert needle in errors[0]["message"]
    assert count(db, Customer) == 0


def test_a_zip_that_is_not_a_workbook(client, db):
    _, h = admin_headers(db)
    buf = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
    r = upload(client, h, buf.getvalue(), name="x.xlsx", lang="en")
    assert r.status_code == 422
    assert "not a readable Excel workbook" in r.json()["errors"][0]["message"]


def test_oversized_file(client, db, monkeypatch):
    root, h = admin_headers(db)
    monkeypatch.setattr(import_format, "MAX_BYTES", 2048)
    small = to_csv(ZH_HEADERS, [customer_row("小", root)])
    assert upload(client, h, small).status_code == 200
    big = to_csv(ZH_HEADERS, [customer_row(f"客户{i}", root) for i in range(60)])
    assert len(big) > 2048
    r = upload(client, h, big, lang="en")
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"field": "file", "message": "The file is larger than the limit of 2 KB."}
    ]


def test_header_problems_are_reported_on_row_one(client, db):
    root, h = admin_headers(db)
    data = to_csv(
        ["客户名称", "客户名字", "行政区划代码", "归属单位", "名称"],
        [["甲", "x", "330106", root.id, "乙"]],
    )
    body = upload(client, h, data, lang="en").json()
    got = {(e["row"], e["field"]) for e in body["errors"]}
    assert got == {(1, "客户名字"), (1, "name")}
    unknown = next(e for e in body["errors"] if e["field"] == "客户名字")
    assert (
        "客户名称/name" in unknown["message"]
        and "统一社会信用代码/credit_code" in unknown["message"]
    )


# --- scope and permission -------------------------------------------------------------------


def test_scope_applies_to_every_reference(client, db):
    org = build_org(db)
    make_staff(db, org.county_y, username="agent-y")
    make_staff(db, org.county_x, username="agent-x")
    elsewhere = make_customer(db, org.county_y, "Y县客户", credit_code=code(50), external_id="Y-1")
    db.commit()
    h = org.headers["county_x"]
    data = to_csv(
        ZH_HEADERS,
        [
            customer_row("本县客户", org.county_x, account_manager="agent-x"),  # row 2: fine
            customer_row("越界单位", org.county_y),  # row 3
            customer_row("越界单位名", "Y县"),  # row 4
            customer_row("越界经理", org.county_x, account_manager="agent-y"),  # row 5
            customer_row("越界上级", org.county_x, parent="Y-1"),  # row 6
            customer_row("越界更新", org.county_x, credit_code=code(50)),  # row 7
        ],
    )
    body = upload(client, h, data, lang="en").json()
    assert {(e["row"], e["field"]) for e in body["errors"]} == {
        (3, "owning_unit"),
        (4, "owning_unit"),
        (5, "account_manager"),
        (6, "parent"),
        (7, "credit_code"),
    }
    assert upload(client, h, data, dry_run=False).status_code == 422
    db.expire_all()
    assert db.get(Customer, elsewhere.id).name == "Y县客户"
    # The city above both counties may import into either.
    city = upload(client, org.headers["city_a"], data, lang="en").json()
    assert city["errors"] == [] and (city["created"], city["updated"]) == (5, 1)


def test_agents_get_403_and_supervisors_may_import(client, db):
    unit = make_unit(db, "县公司")
    agent = token_for(db, make_staff(db, unit, roles=("agent",)))
    supervisor = token_for(db, make_staff(db, unit, roles=("supervisor",)))
    data = to_csv(ZH_HEADERS, [customer_row("甲", unit)])
    r = upload(client, agent, data)
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert upload(client, supervisor, data, dry_run=False).status_code == 200
    assert count(db, Customer) == 1
    assert client.post(URL, files={"file": ("a.csv", data)}).status_code == 401


def test_service_refuses_agents_and_unknown_kinds(db):
    unit = make_unit(db)
    agent = make_staff(db, unit)
    viewer = Viewer(agent.id, agent.username, unit.id, unit.path, frozenset({"agent"}))
    with pytest.raises(Forbidden):
        importing.import_file(db, viewer, b"name\nx\n")
    with pytest.raises(Invalid):
        importing.import_file(db, SYSTEM, b"name\nx\n", kind="tickets")


# --- contacts and revenue -------------------------------------------------------------------


def test_contacts_import_and_reimport(client, db):
    root, h = admin_headers(db)
    group = make_customer(db, root, "集团", credit_code=code(60), is_group=True)
    plain = make_customer(db, root, "普通", external_id="P-1")
    db.commit()
    headers = ["客户", "姓名", "职务", "电话", "邮箱", "首选渠道", "集团管理员"]
    rows = [
        [
            code(60).lower(),
            "王经理",
            "总经理",
            "+86 139-1234-5678",
            "wang@example.cn",
            "微信",
            "是",
        ],
        ["P-1", "前台", "", "0571-87654321", "", "", ""],
        ["P-1", "李四", "", "12345", "not-mail", "传真", ""],  # row 4: three bad fields
        ["NOPE", "赵五", "", "", "", "", ""],  # row 5
        ["P-1", "钱六", "", "", "", "", "是"],  # row 6: not a group customer
        ["P-1", "", "", "", "", "", ""],  # row 7: no name
    ]
    body = upload(client, h, to_csv(headers, rows), kind="contacts", lang="en").json()
    assert {(e["row"], e["field"]) for e in body["errors"]} == {
        (4, "phone"),
        (4, "email"),
        (4, "preferred_channel"),
        (5, "customer"),
        (6, "is_group_admin"),
        (7, "name"),
    }
    good = rows[:2]
    r = upload(client, h, to_csv(headers, good), kind="contacts", dry_run=False)
    assert r.status_code == 200 and r.json()["created"] == 2, r.text
    wang = db.scalars(select(Contact).where(Contact.name == "王经理")).one()
    assert (wang.customer_id, wang.phone, wang.preferred_channel, wang.is_group_admin) == (
        group.id,
        "13912345678",
        "wechat",
        True,
    )
    good[1][3] = "0571-88888888"
    again = upload(client, h, to_csv(headers, good), kind="contacts", dry_run=False).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 1, 1)
    assert count(db, Contact) == 2
    front = db.scalars(select(Contact).where(Contact.customer_id == plain.id)).one()
    assert front.phone == "0571-88888888"
    assert count(db, AuditEntry, AuditEntry.action == "contact.import_update") == 1


def test_revenue_import_and_reimport(client, db):
    root, h = admin_headers(db)
    c = make_customer(db, root, "收入客户", credit_code=code(70), external_id="R-1")
    db.commit()
    headers = ["客户", "日期", "金额", "币种", "业务线", "来源单号"]
    rows = [
        ["R-1", "2026/1/5", "¥1,200.50", "", "专线", "INV-1"],
        [code(70), "2026年2月1日", "800", "CNY", "云", ""],
        ["R-1", "2026-02-30", "1", "", "", ""],  # row 4: no such day
        ["R-1", "2026-03-01", "-5", "", "", ""],  # row 5: negative
        ["R-1", "2026-03-01", "abc", "", "", ""],  # row 6: not a number
        ["R-1", "2026-03-01", "1.234", "", "", ""],  # row 7: too many decimals
        ["R-1", "昨天", "1", "US", "", ""],  # row 8: date and currency
        ["NOPE", "2026-03-01", "1", "", "", ""],  # row 9: no such customer
    ]
    body = upload(client, h, to_csv(headers, rows), kind="revenue", lang="en").json()
    assert {(e["row"], e["field"]) for e in body["errors"]} == {
        (4, "date"),
        (5, "amount"),
        (6, "amount"),
        (7, "amount"),
        (8, "date"),
        (8, "currency"),
        (9, "customer"),
    }
    messages = {(e["row"], e["field"]): e["message"] for e in body["errors"]}
    assert messages[(5, "amount")] == "Must be at least 0."
    assert messages[(6, "amount")] == "Must be a number."
    assert messages[(4, "date")] == "Must be a date (YYYY-MM-DD)."
    good = rows[:2]
    r = upload(client, h, to_csv(headers, good), kind="revenue", dry_run=False)
    assert r.status_code == 200 and r.json()["created"] == 2, r.text
    got = sorted((x.date, x.amount, x.source_ref) for x in db.scalars(select(RevenueRecord)))
    assert got == [
        (date(2026, 1, 5), Decimal("1200.50"), "INV-1"),
        (date(2026, 2, 1), Decimal("800.00"), None),
    ]
    again = upload(client, h, to_csv(headers, good), kind="revenue", dry_run=False).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)
    good[0][2] = "1300"
    again = upload(client, h, to_csv(headers, good), kind="revenue", dry_run=False).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 1, 1)
    assert count(db, RevenueRecord) == 2
    inv = db.scalars(select(RevenueRecord).where(RevenueRecord.source_ref == "INV-1")).one()
    assert inv.amount == Decimal("1300") and inv.customer_id == c.id


def test_revenue_from_xlsx_with_date_and_number_cells(client, db):
    root, h = admin_headers(db)
    c = make_customer(db, root, "表格客户", external_id="X-9")
    db.commit()
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["customer", "date", "amount", "business line"])
    sheet.append(["X-9", date(2026, 4, 30), 1234.5, "专线"])
    sheet.append(["X-9", "2026-05-01", -1, ""])
    buf = io.BytesIO()
    book.save(buf)
    body = upload(client, h, buf.getvalue(), kind="revenue", name="收入.xlsx").json()
    assert [(e["row"], e["field"]) for e in body["errors"]] == [(3, "amount")]
    sheet.delete_rows(3)
    buf = io.BytesIO()
    book.save(buf)
    r = upload(client, h, buf.getvalue(), kind="revenue", name="收入.xlsx", dry_run=False)
    assert r.status_code == 200, r.text
    row = db.scalars(select(RevenueRecord).where(RevenueRecord.customer_id == c.id)).one()
    assert (row.date, row.amount, row.business_line) == (
        date(2026, 4, 30),
        Decimal("1234.50"),
        "专线",
    )


# --- progress and the service ---------------------------------------------------------------


def test_progress_is_reported(db):
    root = make_unit(db)
    data = to_csv(ZH_HEADERS, [customer_row(f"客户{i}", root) for i in range(5)])
    calls: list[tuple[str, int, int]] = []
    report = importing.import_file(
        db, SYSTEM, data, dry_run=False, progress=lambda *a: calls.append(a)
    )
    assert report.created == 5
    assert ("check", 5, 5) in calls and ("write", 4, 4) in calls
    set_locale("en")
    assert report.as_dict()["errors"] == []


# --- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def cli_url(database_url: str, tmp_path: Path, monkeypatch) -> Iterator[str]:
    """A committed database of this test alone, which the CLI reaches through KEFU_*."""
    pg_schema = None
    if database_url.startswith("postgresql"):
        assert PG_URL
        pg_schema = f"kefu_cli_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        with make_engine(PG_URL).begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{pg_schema}"'))
        url = f"{PG_URL}?options=-csearch_path%3D{pg_schema}"
    else:
        url = "sqlite:///" + str(tmp_path / "cli-import.db")
    engine = make_engine(url)
    with engine.begin() as conn:
        schema.upgrade(connection=conn)
    engine.dispose()
    monkeypatch.setenv("KEFU_DATABASE_URL", url)
    monkeypatch.setenv("KEFU_DATA_DIR", str(tmp_path / "var"))
    use_settings(None)
    yield url
    use_settings(None)
    if pg_schema:
        with make_engine(PG_URL).begin() as conn:  # type: ignore[arg-type]
            conn.execute(text(f'DROP SCHEMA "{pg_schema}" CASCADE'))


def cli_app() -> typer.Typer:
    """`kefu import …` as the lead wires it (`app.add_typer(import_app, name="import")`)."""
    from kefu.cli.importing import import_app

    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """kefu"""

    root.add_typer(import_app, name="import")
    return root


def test_cli_dry_run_apply_and_acting_user(cli_url, tmp_path):
    factory = make_sessionmaker(make_engine(cli_url))
    with unit_of_work(factory) as s:
        city = make_unit(s, "甲市")
        county = make_unit(s, "X县", city, region_code="330106")
        other = make_unit(s, "Y县", city, region_code="330110")
        make_staff(s, county, username="county-boss", roles=("manager",))
        make_staff(s, county, username="county-agent", roles=("agent",))
        ids = (county.id, other.id)
    good = tmp_path / "good.csv"
    good.write_bytes(
        to_csv(ZH_HEADERS, [customer_row("甲", ids[0]), customer_row("乙", ids[0])], "gbk")
    )
    bad = tmp_path / "bad.csv"
    bad.write_bytes(to_csv(ZH_HEADERS, [customer_row("甲", ids[0]), customer_row("丙", ids[1])]))
    runner = CliRunner()
    app = cli_app()

    r = runner.invoke(app, ["import", "customers", str(good), "--lang", "en"])
    assert r.exit_code == 0, r.output
    assert "2 rows: 2 to create, 0 to update, 0 unchanged, 0 with errors." in r.stdout
    assert "Dry run" in r.stdout
    with unit_of_work(factory) as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 0

    # As a county manager, the other county's unit is out of reach: nothing is written.
    r = runner.invoke(app, ["import", "customers", str(bad), "--apply", "--as", "county-boss"])
    assert r.exit_code == 1
    # In Chinese by default, naming the column as the file does.
    assert "第 3 行，归属单位：没有这个单位。" in r.stdout
    with unit_of_work(factory) as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 0

    r = runner.invoke(app, ["import", "customers", str(good), "--apply", "--as", "county-boss"])
    assert r.exit_code == 0, r.output
    with unit_of_work(factory) as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 2
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "customer.import")).one()
        assert entry.channel == "cli" and entry.actor_name == "county-boss"

    r = runner.invoke(app, ["import", "customers", str(good), "--as", "county-agent"])
    assert r.exit_code == 1
    r = runner.invoke(app, ["import", "customers", str(good), "--as", "nobody"])
    assert r.exit_code == 1
    r = runner.invoke(app, ["import", "customers", str(tmp_path / "missing.csv")])
    assert r.exit_code == 1
    weird = tmp_path / "weird.csv"
    weird.write_bytes("名称\n甲\n".encode("utf-16"))
    r = runner.invoke(app, ["import", "customers", str(weird), "--lang", "en"])
    assert r.exit_code == 1 and "UTF-16" in r.output


def test_cli_contacts_kind(cli_url, tmp_path):
    factory = make_sessionmaker(make_engine(cli_url))
    with unit_of_work(factory) as s:
        unit = make_unit(s, "甲市")
        make_customer(s, unit, "客户", external_id="K-1")
    f = tmp_path / "contacts.csv"
    f.write_bytes(to_csv(["customer", "name", "phone"], [["K-1", "张三", "13812345678"]]))
    r = CliRunner().invoke(
        cli_app(), ["import", "customers", str(f), "--kind", "contacts", "--apply"]
    )
    assert r.exit_code == 0, r.output
    with unit_of_work(factory) as s:
        assert s.scalars(select(Contact.phone)).all() == ["13812345678"]
