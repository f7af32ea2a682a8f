"""Figure: a county agent's customer list, `GET /api/v1/customers?tier=B&sort=revenue&limit=50`,
answers with p99 <= 30 ms with 1,000,000 customers in PostgreSQL.

It has a database of its own, seeded as benchmarks/tiering_run.py seeds (once: when it is
empty), then tiered by a tiering run applied (once: when customers have no tier yet), so
tiers and trailing-12-month revenue are set. Later runs find it prepared and only measure
(the schema is brought to head first). It picks the county owning the most B customers,
makes a county agent there with an access token, who also manages some customers of other
counties (so the list mixes both parts of the scope), and times the request in-process
through the real ASGI app (FastAPI TestClient): authentication, scoping, the query,
serialisation.

    .venv/bin/python -m benchmarks.customers_list
    .venv/bin/python -m benchmarks.customers_list --reuse       # only measure; never seed
    .venv/bin/python -m benchmarks.customers_list --explain     # add the query plans

Prints one JSON object on stdout (progress on stderr); exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, event, func, insert, select, text, update
from sqlalchemy.engine import make_url

from benchmarks import _seed_customers as seeding
from benchmarks._common import (
    emit,
    ensure_postgres_database,
    latency_summary,
    machine,
    median,
    progress,
    stamp,
)

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/kefu_bench_customers"
TARGET_P99_MS = 30.0
LIMIT = 50
TIER = "B"
PARAMS = {"tier": TIER, "sort": "revenue", "limit": LIMIT}
ENDPOINT = f"GET /api/v1/customers?tier={TIER}&sort=revenue&limit={LIMIT}"
AGENT = "bench-county-agent"
MANAGED_ELSEWHERE = 30  # customers of other counties the agent is account manager of


def prepare(engine: Engine, url: str, customers: int, reuse: bool) -> dict[str, Any]:
    """Seed when empty; tier (start and apply a run) when customers have no tier; analyse
    after either. A prepared database is only brought to the schema's head."""
    from kefu import schema
    from kefu.db import make_sessionmaker, unit_of_work
    from kefu.scope import SYSTEM
    from kefu.tiering import service as tiering

    out: dict[str, Any] = {"seeded": False, "tiered": False}
    have = seeding.counts(engine)
    if not have or not have["customers"]:
        if reuse:
            raise SystemExit("--reuse: the database holds no customers")
        progress(f"no customers: seeding {customers} (as benchmarks/tiering_run.py does)")
        engine.dispose()
        seeding.reset_database(url)
        seeding.seed(engine, customers, 12)
        out["seeded"] = True
    else:
        schema.upgrade(url)  # migrations landed since the seed apply to it
    with engine.connect() as conn:
        untiered = conn.scalar(text("SELECT count(*) FROM customers WHERE tier IS NULL"))
    if untiered and reuse:
        raise SystemExit(f"--reuse: {untiered} customers have no tier yet")
    if untiered:
        progress(f"{untiered} customers have no tier: running and applying a tiering run")
        factory = make_sessionmaker(engine)
        t0 = time.perf_counter()
        with unit_of_work(factory) as session:
            run_id = tiering.start_run(session, SYSTEM, seeding.RUN_DATE).id
        with unit_of_work(factory) as session:
            tiering.apply_run(session, SYSTEM, run_id)
        out["tiered"] = True
        out["tiering_s"] = round(time.perf_counter() - t0, 1)
    if out["seeded"] or out["tiered"]:
        # What autovacuum does after a run changed every customer: fresh statistics (tiers
        # were all NULL when the seed was analysed) and the visibility map.
        seeding.analyze(engine)
    return out


def county_agent(engine: Engine) -> dict[str, Any]:
    """The county owning the most B customers, and an agent of it (made when missing), who
    manages MANAGED_ELSEWHERE customers of tier B of other counties: the 10 with the most
    revenue (so they reach the first page) and 20 more spread over the id range."""
    from kefu.customers.models import Customer
    from kefu.scope import path_in_subtree
    from kefu.staff.models import Staff, StaffRole
    from kefu.units.models import Unit

    with engine.begin() as conn:
        unit_id, path, depth = conn.execute(
            text(
                "SELECT u.id, u.path, u.depth FROM customers AS c "
                "JOIN units AS u ON u.id = c.owning_unit_id "
                "WHERE u.depth = 2 AND c.tier = :tier "
                "GROUP BY u.id, u.path, u.depth ORDER BY count(*) DESC, u.id LIMIT 1"
            ),
            {"tier": TIER},
        ).one()
        subtree = list(conn.scalars(select(Unit.id).where(path_in_subtree(Unit.path, path))))
        username = f"{AGENT}-{unit_id}"
        staff_id = conn.scalar(select(Staff.id).where(Staff.username == username))
        if staff_id is None:
            at = datetime.now(UTC)
            staff_id = conn.scalar(
                insert(Staff)
                .values(
                    username=username,
                    display_name="县支局客户经理",
                    unit_id=unit_id,
                    locale="zh_CN",
                    is_active=True,
                    failed_logins=0,
                    created_at=at,
                    updated_at=at,
                )
                .returning(Staff.id)
            )
            conn.execute(insert(StaffRole).values(staff_id=staff_id, role="agent"))
        managed = list(
            conn.scalars(select(Customer.id).where(Customer.account_manager_id == staff_id))
        )
        if not managed:
            elsewhere = select(Customer.id).where(
                Customer.tier == TIER, Customer.owning_unit_id.not_in(subtree)
            )
            top = elsewhere.order_by(Customer.revenue_12m.desc(), Customer.id.desc()).limit(10)
            spread = elsewhere.where(Customer.id % 9973 == 0).order_by(Customer.id).limit(20)
            managed = sorted(set(conn.scalars(top)) | set(conn.scalars(spread)))
            conn.execute(
                update(Customer).where(Customer.id.in_(managed)).values(account_manager_id=staff_id)
            )
        owned = conn.execute(
            select(func.count(), func.count().filter(Customer.tier == TIER)).where(
                Customer.owning_unit_id.in_(subtree) | (Customer.account_manager_id == staff_id)
            )
        ).one()
    return {
        "staff_id": int(staff_id),
        "unit_id": int(unit_id),
        "unit_path": str(path),
        "unit_depth": int(depth),
        "subtree_units": subtree,
        "managed_elsewhere": managed,
        "visible_customers": int(owned[0]),
        "visible_tier_customers": int(owned[1]),
    }


def expected_first_page(engine: Engine, agent: dict[str, Any]) -> list[int]:
    """The ids the first page must hold, straight from SQL: the naive query."""
    from kefu.customers.models import Customer

    with engine.connect() as conn:
        return list(
            conn.scalars(
                select(Customer.id)
                .where(
                    Customer.owning_unit_id.in_(agent["subtree_units"])
                    | (Customer.account_manager_id == agent["staff_id"]),
                    Customer.tier == TIER,
                )
                .order_by(Customer.revenue_12m.desc(), Customer.id.desc())
                .limit(LIMIT)
            )
        )


def access_token(factory: Any, staff_id: int) -> str:
    from kefu.auth import service as auth
    from kefu.db import unit_of_work
    from kefu.scope import SYSTEM
    from kefu.staff.models import Staff

    with unit_of_work(factory) as session:
        staff = session.get(Staff, staff_id)
        assert staff is not None
        plain, _ = auth.issue_token(session, SYSTEM, staff, kind="access", name="benchmark")
    return plain


def sanity(
    client: Any, headers: dict[str, str], agent: dict[str, Any], expected: list[int]
) -> dict[str, Any]:
    """The first two pages: the county's B customers only, revenue never increasing, the
    first page exactly the top of the list by SQL."""
    r = client.get("/api/v1/customers", params=PARAMS, headers=headers)
    r.raise_for_status()
    first = r.json()
    items = list(first["items"])
    if first["next_cursor"]:
        r2 = client.get(
            "/api/v1/customers", params={**PARAMS, "cursor": first["next_cursor"]}, headers=headers
        )
        r2.raise_for_status()
        items += r2.json()["items"]
    subtree = set(agent["subtree_units"])
    revenue = [Decimal(c["revenue_12m"]) for c in items]
    keys = [(Decimal(c["revenue_12m"]), c["id"]) for c in items]
    mine = set(agent["managed_elsewhere"])
    out = {
        "items": len(first["items"]),
        "checked_items": len(items),
        "managed_elsewhere_on_first_page": sum(c["id"] in mine for c in first["items"]),
        "outside_scope": sum(
            c["owning_unit_id"] not in subtree and c["id"] not in mine for c in items
        ),
        "wrong_tier": sum(c["tier"] != TIER for c in items),
        "revenue_non_increasing": all(a >= b for a, b in pairwise(revenue)),
        "strictly_ordered": all(a > b for a, b in pairwise(keys)),
        "first_page_matches_sql": [c["id"] for c in first["items"]] == expected,
        "top_revenue": str(revenue[0]) if revenue else None,
    }
    out["ok"] = (
        out["items"] == min(LIMIT, agent["visible_tier_customers"])
        and out["outside_scope"] == 0
        and out["wrong_tier"] == 0
        and bool(out["revenue_non_increasing"])
        and bool(out["strictly_ordered"])
        and bool(out["first_page_matches_sql"])
    )
    return out


def profile_pass(
    client: Any, headers: dict[str, str], engine: Engine, n: int, explain: bool
) -> dict[str, Any]:
    """Queries per request and time inside the database driver, over `n` more requests."""
    per_request: list[tuple[int, int]] = []
    current = {"n": 0, "ns": 0}
    statements: list[tuple[str, Any]] = []

    def before(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: Any) -> None:
        conn.info["bench_t0"] = time.perf_counter_ns()

    def after(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: Any) -> None:
        current["n"] += 1
        current["ns"] += time.perf_counter_ns() - conn.info.pop("bench_t0", 0)
        if not per_request:
            statements.append((statement, params))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        for _ in range(n):
            current["n"] = current["ns"] = 0
            client.get("/api/v1/customers", params=PARAMS, headers=headers)
            per_request.append((current["n"], current["ns"]))
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    out: dict[str, Any] = {
        "requests": n,
        "queries_per_request": median([q for q, _ in per_request]),
        "db_ms_median": round(median([ns for _, ns in per_request]) / 1e6, 3),
        "statements": [" ".join(s.split())[:400] for s, _ in statements],
    }
    if explain and engine.dialect.name == "postgresql":
        plans = []
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            for statement, params in statements:
                if "FROM customers" not in statement:
                    continue
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
                plans.append("\n".join(row[0] for row in cur.fetchall()))
            raw.rollback()
        finally:
            raw.close()
        out["plans"] = plans
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("KEFU_BENCH_CUSTOMERS_DATABASE_URL", DEFAULT_URL),
        help="its database (default $KEFU_BENCH_CUSTOMERS_DATABASE_URL or %(default)s); "
        "seeded and tiered when empty, reused as it is otherwise",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="only measure: refuse to seed or tier (the database must be prepared)",
    )
    parser.add_argument(
        "--customers", type=int, default=1_000_000, help="customers to seed when empty"
    )
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument(
        "--explain", action="store_true", help="add EXPLAIN (ANALYZE, BUFFERS) (PostgreSQL)"
    )
    args = parser.parse_args(argv)

    with warnings.catch_warnings():  # Starlette's notice about httpx is not ours to act on
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from kefu.app import create_app
    from kefu.config import Settings
    from kefu.db import make_engine, make_sessionmaker

    url = args.database_url
    backend = make_url(url).get_backend_name()
    if backend == "postgresql":
        ensure_postgres_database(url)
    settings = Settings(
        database_url=url,
        secret_key="bench",
        embedded_worker=False,
        data_dir=Path(os.environ.get("TMPDIR", "/tmp")) / "kefu-bench",
    )
    engine = make_engine(url)
    prepared = prepare(engine, url, args.customers, args.reuse)
    with engine.connect() as conn:
        n_customers = int(conn.scalar(text("SELECT count(*) FROM customers")) or 0)
        pg_version = conn.scalar(text("SHOW server_version")) if backend == "postgresql" else None
    agent = county_agent(engine)
    progress(
        f"county unit {agent['unit_id']} ({agent['unit_path']}): "
        f"{agent['visible_customers']} visible customers, {agent['visible_tier_customers']} "
        f"in tier {TIER} ({len(agent['managed_elsewhere'])} managed in other counties)"
    )
    expected = expected_first_page(engine, agent)
    headers = {
        "Authorization": f"Bearer {access_token(make_sessionmaker(engine), agent['staff_id'])}"
    }
    app = create_app(settings)
    app_engine = app.state.sessionmaker.kw["bind"]

    with TestClient(app) as client:
        check = sanity(client, headers, agent, expected)
        progress(f"sanity check: {check}")
        progress(f"warm-up: {args.warmup} requests")
        for _ in range(args.warmup):
            client.get("/api/v1/customers", params=PARAMS, headers=headers)
        progress(f"timing {args.requests} requests")
        load_before = os.getloadavg()[0]
        cpu_before = time.process_time_ns()
        samples: list[int] = []
        failures = 0
        for _ in range(args.requests):
            t0 = time.perf_counter_ns()
            r = client.get("/api/v1/customers", params=PARAMS, headers=headers)
            samples.append(time.perf_counter_ns() - t0)
            failures += r.status_code != 200
        cpu_ms = (time.process_time_ns() - cpu_before) / 1e6 / max(1, args.requests)
        load_after = os.getloadavg()[0]
        profile = profile_pass(client, headers, app_engine, min(200, args.requests), args.explain)

    summary = latency_summary(samples)
    passed = summary["p99_ms"] <= TARGET_P99_MS and failures == 0 and bool(check["ok"])
    result = {
        "benchmark": "customers_list",
        "date": stamp(),
        "database": backend,
        "customers": n_customers,
        "endpoint": ENDPOINT,
        "requests": args.requests,
        "warmup": args.warmup,
        **summary,
        "target_p99_ms": TARGET_P99_MS,
        "pass": passed,
        "items": check["items"],
        "failures": failures,
        "viewer": {
            "role": "agent",
            "staff_id": agent["staff_id"],
            "unit_id": agent["unit_id"],
            "unit_depth": agent["unit_depth"],
            "subtree_units": len(agent["subtree_units"]),
            "managed_elsewhere": len(agent["managed_elsewhere"]),
            "visible_customers": agent["visible_customers"],
            "visible_tier_customers": agent["visible_tier_customers"],
        },
        "cpu_ms_per_request": round(cpu_ms, 3),
        "load_avg_1m": [round(load_before, 2), round(load_after, 2)],
        "sanity": check,
        "profile": profile,
        "prepared": prepared,
        "machine": machine(pg_version),
    }
    emit(result)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
