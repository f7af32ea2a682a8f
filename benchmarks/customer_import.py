"""Figure: importing a 100,000-row customer CSV takes <= 30 s on PostgreSQL, dry run included.

The database is rebuilt (schema by Alembic, a unit tree of 1 province, 11 cities and 90
counties, 200 account managers), then a CSV of customers is generated the way a CRM export
looks: UTF-8 with a BOM and Chinese headers, realistic Chinese company names, valid unified
social credit codes (GB 32100 check character), county region codes, units named by name
(and some by id), account managers, flags, statuses, and group trees whose branches name
their head by credit code or external id — some branches before their head in the file.

Timed, each as the CLI runs it (one unit of work, committed): the dry run (read, map,
validate every row, resolve references, the report) and the apply (the same checks, then
the bulk writes and the audit rows). Afterwards the customers are counted and every path
and depth is checked against its parent's. For information, not the target: a dry run of
the same file again (every row matches an existing customer) and the apply of a revised
file in which every tenth customer changed (the set-based update path).

    .venv/bin/python -m benchmarks.customer_import                # PostgreSQL
    .venv/bin/python -m benchmarks.customer_import --rows 20000
    .venv/bin/python -m benchmarks.customer_import --database-url sqlite:///var/bench-import.db

Prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, insert, text
from sqlalchemy.engine import make_url

from benchmarks._common import (
    check_resettable,
    emit,
    ensure_postgres_database,
    machine,
    progress,
    stamp,
)

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/kefu_bench_import"
TARGET_S = 30.0
SEED = 20261126
N_CITIES = 11
N_COUNTIES = 90
N_MANAGERS = 200
BLOCK = 20  # rows per block: a group head at offset 2, branches at 0, 1, 3, 4, 5

CITIES = ["杭州", "宁波", "温州", "嘉兴", "湖州", "绍兴", "金华", "衢州", "舟山", "台州", "丽水"]
TRADE_NAMES = (
    "恒远 华信 中天 鼎盛 瑞丰 宏达 金茂 天成 新元 永安 东方 海峡 万通 聚力 博远 康达 "
    "昌盛 华润 隆基 锦程 明辉 盛世 汇丰 正泰 远航 星辰 凯旋 润泽 德信 和美 浩然 天瑞 "
    "佳禾 同创 卓越 银河 兴业 信诚 安泰 弘毅 绿源 嘉利 飞扬 创新 华联 晨光 泰和 祥云"
).split()
TRADES = [
    ("科技", "信息技术"),
    ("软件", "信息技术"),
    ("网络", "信息技术"),
    ("机械制造", "制造业"),
    ("电子", "制造业"),
    ("纺织", "制造业"),
    ("建设工程", "建筑业"),
    ("建筑装饰", "建筑业"),
    ("贸易", "批发零售"),
    ("商贸", "批发零售"),
    ("物流", "交通运输"),
    ("运输", "交通运输"),
    ("能源", "能源"),
    ("新能源", "能源"),
    ("医疗器械", "医疗卫生"),
    ("医药", "医疗卫生"),
    ("教育咨询", "教育"),
    ("农业开发", "农林牧渔"),
    ("投资", "金融"),
    ("融资租赁", "金融"),
]
SUFFIXES = ["有限公司", "有限公司", "有限公司", "股份有限公司", "集团有限公司"]
HEADERS = [
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


# --- the organisation ---------------------------------------------------------------------


def reset_database(url: str) -> None:
    """An empty database of `url` with Kefu's schema (alembic upgrade head)."""
    from kefu import schema
    from kefu.db import make_engine

    check_resettable(url)
    u = make_url(url)
    if u.get_backend_name() == "postgresql":
        ensure_postgres_database(url)
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    elif u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        for suffix in ("", "-wal", "-shm"):
            Path(u.database + suffix).unlink(missing_ok=True)
    schema.upgrade(url)


def seed_org(engine: Engine) -> list[dict[str, Any]]:
    """Units (paths as kefu.tree makes them) and account managers; returns the counties."""
    from kefu.staff.models import Staff, StaffRole
    from kefu.units.models import Unit

    at = datetime.now(UTC)
    units: list[dict[str, Any]] = []

    def unit(uid: int, parent: int | None, name: str, code: str, path: str, depth: int) -> None:
        units.append(
            {
                "id": uid,
                "parent_id": parent,
                "name": name,
                "region_code": code,
                "timezone": "Asia/Shanghai",
                "path": path,
                "depth": depth,
                "sort_order": uid,
                "is_active": True,
                "created_at": at,
                "updated_at": at,
            }
        )

    unit(1, None, "浙江省公司", "330000", "/1/", 0)
    for k in range(N_CITIES):
        unit(2 + k, 1, f"{CITIES[k]}市分公司", f"33{k + 1:02d}00", f"/1/{2 + k}/", 1)
    counties = []
    for j in range(N_COUNTIES):
        uid, city = 2 + N_CITIES + j, j % N_CITIES
        code = f"33{city + 1:02d}{j // N_CITIES + 2:02d}"
        name = f"{CITIES[city]}{j // N_CITIES + 1}区支局"
        unit(uid, 2 + city, name, code, f"/1/{2 + city}/{uid}/", 2)
        counties.append({"id": uid, "name": name, "region_code": code, "city": city})
    staff = [
        {
            "id": i + 1,
            "username": f"am{i + 1:04d}",
            "display_name": f"客户经理{i + 1:04d}",
            "unit_id": counties[i % N_COUNTIES]["id"],
            "locale": "zh_CN",
            "is_active": True,
            "failed_logins": 0,
            "created_at": at,
            "updated_at": at,
        }
        for i in range(N_MANAGERS)
    ]
    with engine.begin() as conn:
        conn.execute(insert(Unit), units)
        conn.execute(insert(Staff), staff)
        conn.execute(insert(StaffRole), [{"staff_id": s["id"], "role": "agent"} for s in staff])
        if engine.dialect.name == "postgresql":
            for table in ("units", "staff"):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
    return counties


# --- the file -----------------------------------------------------------------------------


def credit_code(region: str, n: int) -> str:
    """A valid unified social credit code: 91 + region + 9 characters from n + check."""
    from kefu.customers.policy import CREDIT_ALPHABET, credit_check_char

    digits = []
    for _ in range(9):
        n, r = divmod(n, len(CREDIT_ALPHABET))
        digits.append(CREDIT_ALPHABET[r])
    body = "91" + region + "".join(reversed(digits))
    return body + credit_check_char(body)


def make_csv(rows: int, counties: list[dict[str, Any]], revision: int = 0) -> bytes:
    """The file; `revision` > 0 changes every tenth customer's notes and status (an update
    of the same customers, as the next export from the CRM would be)."""
    rng = random.Random(SEED)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADERS)
    for start in range(0, rows, BLOCK):
        size = min(BLOCK, rows - start)
        block = [_company(rng, start + k, counties) for k in range(size)]
        if size > 5:  # a group: the head at offset 2, branches around it
            head = block[2]
            head["is_group"] = "是"
            head["name"] = head["base"] + "集团有限公司"
            for offset, k in enumerate((0, 1, 3, 4, 5)):
                branch = block[k]
                branch["parent"] = head["credit_code"] if offset % 2 else head["external_id"]
                place = CITIES[branch["city"]]
                branch["name"] = f"{head['base']}集团{place}分公司{start + k}"
        for k, c in enumerate(block):
            if revision and (start + k) % 10 == 0:
                c["notes"] = f"第{revision}次更新"
                c["status"] = "休眠"
            writer.writerow(
                [
                    c["name"],
                    c["short_name"],
                    c["credit_code"],
                    c["external_id"],
                    c["parent"],
                    c["industry"],
                    c["region_code"],
                    c["unit"],
                    c["manager"],
                    c["is_important"],
                    c["is_group"],
                    c["is_potential"],
                    c["status"],
                    c["notes"],
                ]
            )
    return out.getvalue().encode("utf-8-sig")


def _company(rng: random.Random, i: int, counties: list[dict[str, Any]]) -> dict[str, Any]:
    county = counties[int(rng.paretovariate(1.2) * 7) % len(counties)]
    city = CITIES[county["city"]]
    trade_name = rng.choice(TRADE_NAMES) + rng.choice(TRADE_NAMES)[0]
    trade, industry = rng.choice(TRADES)
    base = f"{city}{trade_name}{trade}"
    roll = rng.random()
    return {
        "base": base,
        "city": county["city"],
        "name": f"{base}{rng.choice(SUFFIXES)}",
        "short_name": f"{trade_name}{trade[:2]}",
        "credit_code": credit_code(county["region_code"], i + 1),
        "external_id": f"CRM{i + 1:07d}",
        "parent": "",
        "industry": industry,
        "region_code": county["region_code"],
        "unit": county["name"] if i % 10 else str(county["id"]),
        "manager": f"am{rng.randrange(N_MANAGERS) + 1:04d}" if roll < 0.6 else "",
        "is_important": "是" if roll < 0.01 else "否",
        "is_group": "否",
        "is_potential": "是" if 0.01 <= roll < 0.03 else "",
        "status": "正常" if roll < 0.9 else ("休眠" if roll < 0.97 else "流失"),
        "notes": "重点跟进" if roll > 0.995 else "",
    }


# --- checks -------------------------------------------------------------------------------


def check_tree(engine: Engine) -> int:
    """Customers whose path or depth disagrees with their parent's (0 when all are right)."""
    with engine.connect() as conn:
        return int(
            conn.scalar(
                text(
                    "SELECT count(*) FROM customers c LEFT JOIN customers p ON p.id = c.parent_id "
                    "WHERE (c.parent_id IS NULL AND (c.path <> '/' || c.id || '/' "
                    "                                OR c.depth <> 0)) "
                    "   OR (c.parent_id IS NOT NULL AND (c.path <> p.path || c.id || '/' "
                    "                                    OR c.depth <> p.depth + 1))"
                )
            )
            or 0
        )


def table_count(engine: Engine, table: str, where: str = "") -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text(f"SELECT count(*) FROM {table} {where}")) or 0)


# --- measuring ----------------------------------------------------------------------------


def timed_import(factory: Any, data: bytes, dry_run: bool) -> tuple[float, Any]:
    from kefu.customers import importing
    from kefu.db import unit_of_work
    from kefu.scope import Viewer

    viewer = Viewer(
        staff_id=None,
        username="cli:bench",
        unit_id=None,
        unit_path=None,
        roles=frozenset({"admin"}),
        channel="cli",
    )
    started = time.perf_counter()
    with unit_of_work(factory) as session:
        report = importing.import_file(
            session, viewer, data, kind="customers", filename="customers.csv", dry_run=dry_run
        )
    return time.perf_counter() - started, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("KEFU_BENCH_IMPORT_DATABASE_URL", DEFAULT_URL),
        help="database to REBUILD (default $KEFU_BENCH_IMPORT_DATABASE_URL or %(default)s)",
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep-file", type=Path, help="also write the generated CSV here")
    args = parser.parse_args(argv)

    from kefu.config import Settings, use_settings
    from kefu.customers import import_format
    from kefu.db import make_engine, make_sessionmaker

    url = args.database_url
    use_settings(
        Settings(
            database_url=url,
            secret_key="bench",
            embedded_worker=False,
            data_dir=Path(os.environ.get("TMPDIR", "/tmp")) / "kefu-bench",
        )
    )
    progress(f"rebuilding {make_url(url).render_as_string(hide_password=True)}")
    reset_database(url)
    engine = make_engine(url)
    counties = seed_org(engine)
    progress(f"generating {args.rows} rows")
    data = make_csv(args.rows, counties)
    if args.keep_file:
        args.keep_file.write_bytes(data)
    if len(data) > import_format.MAX_BYTES:
        raise SystemExit("the generated file is above the import's size limit")
    factory = make_sessionmaker(engine)

    progress("dry run")
    dry_s, dry = timed_import(factory, data, dry_run=True)
    progress(f"dry run: {dry_s:.2f}s, {len(dry.errors)} errors")
    if dry.errors:
        for e in dry.errors[:10]:
            progress(f"  row {e.row} {e.field}: {e.message} {e.params}")
    progress("apply")
    apply_s, applied = timed_import(factory, data, dry_run=False)
    progress(f"apply: {apply_s:.2f}s")
    progress("re-import dry run (every row matches)")
    again_s, again = timed_import(factory, data, dry_run=True)
    progress("re-import apply of a revised file (every tenth customer changed)")
    revised = make_csv(args.rows, counties, revision=1)
    update_s, updated = timed_import(factory, revised, dry_run=False)

    customers = table_count(engine, "customers")
    branches = table_count(engine, "customers", "WHERE parent_id IS NOT NULL")
    audits = table_count(engine, "audit_log", "WHERE action = 'customer.import_create'")
    tree_errors = check_tree(engine)
    pg_version = None
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            pg_version = conn.scalar(text("SHOW server_version"))
    ok = (
        not dry.errors
        and applied.applied
        and customers == args.rows
        and applied.created == args.rows
        and audits == args.rows
        and tree_errors == 0
        and again.unchanged == args.rows
        and updated.created == 0
        and updated.updated == len(range(0, args.rows, 10))
    )
    result = {
        "benchmark": "customer_import",
        "date": stamp(),
        "database": engine.dialect.name,
        "rows": args.rows,
        "file_mb": round(len(data) / 1024 / 1024, 2),
        "dry_run_s": round(dry_s, 2),
        "apply_s": round(apply_s, 2),
        "total_s": round(dry_s + apply_s, 2),
        "target_s": TARGET_S,
        "pass": ok and dry_s + apply_s <= TARGET_S,
        "reimport_dry_run_s": round(again_s, 2),
        "update_apply_s": round(update_s, 2),
        "checks": {
            "dry_run_errors": len(dry.errors),
            "created": applied.created,
            "customers": customers,
            "branches": branches,
            "audit_rows": audits,
            "tree_errors": tree_errors,
            "reimport_unchanged": again.unchanged,
            "update_created": updated.created,
            "updated": updated.updated,
        },
        "machine": machine(pg_version),
    }
    emit(result)
    engine.dispose()
    use_settings(None)
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
