"""Seeding for the customer benchmarks (tiering_run, customers_list): a unit tree, customers
with group trees and flags, and long-tailed monthly revenue over three years.

Everything is loaded set-based: one INSERT … SELECT per table over a generated series
(`generate_series` on PostgreSQL, a recursive CTE on SQLite). Secondary indexes are dropped
for the load and rebuilt after it, exactly as Alembic made them (their definitions are read
back from the catalogue), and on PostgreSQL foreign-key triggers are skipped for the load
session (`session_replication_role = replica`): the seed produces consistent rows by
construction, and `check_seed()` verifies them afterwards.

The data, deterministic for a given size (a hash of the row number stands in for chance):

- units: a province (330000), 11 cities (3301 00 … 3311 00), 90 counties (8 or 9 per city);
- customers: blocks of 20 ids, each opening with a group head (5 % of customers, path
  '/head/') followed by 2-5 branches (path '/head/branch/', depth 1) that lie in other
  cities than their head; the rest stand alone ('/id/'). Counties are skewed (the biggest
  holds about 5 % of customers). 1 % are important, 2 % potential, 0.05 % pinned to A;
  every customer is owned by the county of its region code, with no tier yet;
- revenue: `records_per_customer` records per customer on monthly dates over the 36 months
  up to RUN_DATE, spread evenly, so the trailing-12-month window holds a third; 3 % of
  customers are new (all records in the last 12 months) and 8 % lapsed (none in them).
  A customer's size is Pareto-distributed (alpha 1.16: roughly 80/20), each record varies
  around it.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Date, Engine, bindparam, insert, text
from sqlalchemy.engine import make_url

from benchmarks._common import check_resettable, ensure_postgres_database, progress

RUN_DATE = date(2026, 10, 31)  # the tiering run date the revenue dates are laid out for
MONTHS = 36
N_CITIES = 11
N_COUNTIES = 90
FIRST_COUNTY_ID = 2 + N_CITIES  # unit ids: 1 province, 2..12 cities, 13..102 counties
BLOCK = 20  # customer ids per group block: one head, 2-5 branches, the rest alone
SHARE_IMPORTANT = 0.01
SHARE_POTENTIAL = 0.02
SHARE_PINNED = 0.0005
SHARE_NEW = 0.03
SHARE_LAPSED = 0.08
PARETO_ALPHA = 1.16
MIN_SIZE = 200.0  # monthly revenue of the smallest customers (CNY)
MAX_SIZE = 50_000_000.0

SEEDED_TABLES = ("customers", "revenue_records")
CUSTOMER_COLUMNS = (
    "id, name, short_name, credit_code, external_id, parent_id, path, depth, industry_code, "
    "region_code, owning_unit_id, account_manager_id, is_important, is_group, is_potential, "
    "status, notes, tier, service_level, tier_rule, tier_pinned, pin_reason, revenue_12m, "
    "created_at, updated_at"
)


# --- units --------------------------------------------------------------------------------


def plan_units(at: datetime) -> list[dict[str, Any]]:
    """The unit tree: province, cities, counties (county j lies in city j % 11)."""
    rows = [_unit(1, None, "浙江省公司", "330000", "/1/", 0, 0, at)]
    for k in range(N_CITIES):
        uid = 2 + k
        rows.append(
            _unit(uid, 1, f"市分公司{k + 1:02d}", f"33{k + 1:02d}00", f"/1/{uid}/", 1, k, at)
        )
    for j in range(N_COUNTIES):
        uid, city = FIRST_COUNTY_ID + j, j % N_CITIES
        code = f"33{city + 1:02d}{j // N_CITIES + 1:02d}"
        path = f"/1/{2 + city}/{uid}/"
        rows.append(_unit(uid, 2 + city, f"县支局{code}", code, path, 2, j // N_CITIES, at))
    return rows


def _unit(
    uid: int, parent: int | None, name: str, code: str, path: str, depth: int, order: int, at: Any
) -> dict[str, Any]:
    return {
        "id": uid,
        "parent_id": parent,
        "name": name,
        "region_code": code,
        "timezone": "Asia/Shanghai",
        "path": path,
        "depth": depth,
        "sort_order": order,
        "is_active": True,
        "created_at": at,
        "updated_at": at,
    }


# --- SQL pieces per dialect ---------------------------------------------------------------


def _splitmix(x: int, salt: int) -> float:
    """A uniform number in (0, 1) from (x, salt): SplitMix64 (SQLite's stand-in for chance)."""
    mask = (1 << 64) - 1
    h = (x * 0x9E3779B97F4A7C15 + (salt + 1) * 0xD1B54A32D192ED03) & mask
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & mask
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & mask
    h ^= h >> 31
    return ((h >> 11) + 0.5) / float(1 << 53)


class _Sql:
    """The few places where PostgreSQL and SQLite spell the seed differently."""

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"

    def u(self, x: str, salt: int) -> str:
        """A uniform number in (0, 1), a deterministic function of (x, salt)."""
        if self.pg:
            return (
                f"((((hashint8extended(CAST({x} AS bigint), {salt}) & 2147483647)"
                f" + 0.5) / 2147483648.0)::float8)"
            )
        return f"bench_u({x}, {salt})"

    def series(self, name: str, low: int, high: int) -> str:
        """A CTE `name(i)` of the integers low..high."""
        if self.pg:
            return f"{name}(i) AS (SELECT generate_series({low}, {high}))"
        return f"{name}(i) AS (SELECT {low} UNION ALL SELECT i + 1 FROM {name} WHERE i < {high})"

    def with_(self) -> str:
        return "WITH" if self.pg else "WITH RECURSIVE"

    def least(self, a: str, b: str) -> str:
        return f"LEAST({a}, {b})" if self.pg else f"min({a}, {b})"

    def money(self, x: str) -> str:
        return f"round(CAST({x} AS numeric), 2)" if self.pg else f"round({x}, 2)"

    def month_day(self, months_back: str, day: str) -> str:
        """The date `day` days after the first of the month `months_back` before RUN_DATE's."""
        first = RUN_DATE.replace(day=1).isoformat()
        if self.pg:
            return (
                f"(CAST(DATE '{first}' - make_interval(months => CAST({months_back} AS int))"
                f" AS date) + CAST({day} AS int))"
            )
        return f"date('{first}', '-' || ({months_back}) || ' months', '+' || ({day}) || ' days')"

    def floor_int(self, x: str) -> str:
        return f"CAST(floor({x}) AS INTEGER)"


def _customers_sql(q: _Sql, n: int) -> str:
    u, fl = q.u, q.floor_int
    # The county index of a group's root (a head or a customer on its own): skewed to low j.
    root_county = fl(f"{N_COUNTIES} * power({u('s.root', 2)}, 1.5)")
    # A branch lies in another city than its head: city shifted by 1..10, county slot 0..7.
    shift = fl(f"10 * {u('s.i', 4)}")
    slot = fl(f"8 * {u('s.i', 3)}")
    branch_county = (
        f"(({root_county} % {N_CITIES}) + 1 + {shift}) % {N_CITIES} + {N_CITIES} * {slot}"
    )
    block = f"(s0.i - 1) / {BLOCK}"
    branches = f"2 + {fl(f'4 * {u(block, 1)}')}"
    pinned = f"c.u_pin < {SHARE_PINNED}"
    return f"""
{q.with_()} {q.series("series", 1, n)}
INSERT INTO customers ({CUSTOMER_COLUMNS})
SELECT c.i, '客户' || c.i, NULL, NULL, NULL,
       CASE WHEN c.kind = 'branch' THEN c.root END,
       CASE WHEN c.kind = 'branch' THEN '/' || c.root || '/' || c.i || '/'
            ELSE '/' || c.i || '/' END,
       CASE WHEN c.kind = 'branch' THEN 1 ELSE 0 END,
       NULL, u.region_code, u.id, NULL,
       c.u_imp < {SHARE_IMPORTANT}, c.kind = 'head', c.u_pot < {SHARE_POTENTIAL},
       'active', '',
       CASE WHEN {pinned} THEN 'A' END, NULL, CASE WHEN {pinned} THEN 'pinned' END,
       {pinned}, CASE WHEN {pinned} THEN '基准测试：战略客户' END,
       0, :at, :at
FROM (
    SELECT s.i, s.root, s.kind,
           CASE WHEN s.kind = 'branch' THEN {branch_county} ELSE {root_county} END AS county,
           {u("s.i", 5)} AS u_imp, {u("s.i", 6)} AS u_pot, {u("s.i", 7)} AS u_pin
    FROM (
        SELECT s0.i,
               CASE WHEN (s0.i - 1) % {BLOCK} = 0 THEN 'head'
                    WHEN (s0.i - 1) % {BLOCK} <= {branches} THEN 'branch'
                    ELSE 'alone' END AS kind,
               CASE WHEN (s0.i - 1) % {BLOCK} = 0 OR (s0.i - 1) % {BLOCK} > {branches}
                    THEN s0.i ELSE {block} * {BLOCK} + 1 END AS root
        FROM series AS s0
    ) AS s
) AS c
JOIN units AS u ON u.id = {FIRST_COUNTY_ID} + c.county
ORDER BY c.i
"""


def _profile_sql(q: _Sql, n: int) -> str:
    """Per customer: the first month back it has revenue in, how many months, its size."""
    size = q.least(f"{MIN_SIZE} * power({q.u('s.i', 11)}, {-1 / PARETO_ALPHA})", str(MAX_SIZE))
    return f"""
CREATE TEMPORARY TABLE bench_profile AS
{q.with_()} {q.series("series", 1, n)}
SELECT p.i,
       CASE WHEN p.kind < {SHARE_NEW + SHARE_LAPSED} AND p.kind >= {SHARE_NEW} THEN 12
            ELSE 0 END AS lo,
       CASE WHEN p.kind < {SHARE_NEW} THEN 12
            WHEN p.kind < {SHARE_NEW + SHARE_LAPSED} THEN {MONTHS - 12}
            ELSE {MONTHS} END AS span,
       p.size
FROM (SELECT s.i, {q.u("s.i", 8)} AS kind, {size} AS size FROM series AS s) AS p
"""


def _revenue_sql(q: _Sql, r: int) -> str:
    month = q.floor_int(f"(x.k + {q.u('x.id', 9)}) * x.span / {r}")
    day = q.floor_int(f"28 * {q.u('x.id', 10)}")
    # Records spread over fewer months are smaller, so new customers earn like the rest.
    amount = q.money(f"x.size * x.span / {MONTHS}.0 * (0.25 + 1.5 * {q.u('x.id', 12)})")
    # Rows in id order (customer, then record), so the primary key is appended to: on
    # PostgreSQL a set-returning function in the select list, on SQLite a CROSS JOIN (which
    # fixes the loop order).
    if q.pg:
        pairs = f"SELECT p.*, generate_series(0, {r - 1}) AS k FROM bench_profile AS p"
        head = ""
    else:
        pairs = "SELECT p.*, ks.i AS k FROM bench_profile AS p CROSS JOIN ks"
        head = f"{q.with_()} {q.series('ks', 0, r - 1)}"
    return f"""
{head}
INSERT INTO revenue_records (id, customer_id, date, amount, currency, business_line,
                             source_ref, created_at)
SELECT y.id, y.i, {q.month_day("y.m", "y.d")}, y.amount, 'CNY', '', NULL, :at
FROM (
    SELECT x.id, x.i, x.lo + {month} AS m, {day} AS d, {amount} AS amount
    FROM (SELECT (pk.i - 1) * {r} + pk.k + 1 AS id, pk.* FROM ({pairs}) AS pk) AS x
) AS y
"""


# --- loading ------------------------------------------------------------------------------


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


def _secondary_indexes(conn: Connection) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the seeded tables' indexes that back no constraint."""
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            text(
                "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
                "JOIN pg_class i ON i.oid = x.indexrelid "
                "JOIN pg_class t ON t.oid = x.indrelid "
                "WHERE t.relname = ANY(:tables) AND t.relnamespace = 'public'::regnamespace "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"
            ),
            {"tables": list(SEEDED_TABLES)},
        ).all()
    else:
        rows = conn.execute(
            text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                f"AND tbl_name IN ({', '.join(repr(t) for t in SEEDED_TABLES)})"
            )
        ).all()
    return [(str(name), str(sql)) for name, sql in rows]


def seed(engine: Engine, n: int, records_per_customer: int) -> dict[str, Any]:
    """Load units, customers and revenue into the empty schema; returns timings and counts."""
    from kefu.units.models import Unit

    if n < 1 or records_per_customer < 1:
        raise SystemExit("--customers and --records-per-customer must be positive")
    pg = engine.dialect.name == "postgresql"
    q = _Sql(engine.dialect.name)
    at = datetime.now(UTC)
    at_param: Any = at if pg else at.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    timings: dict[str, float] = {}

    def step(name: str, conn: Connection, sql: str, **params: Any) -> None:
        t0 = time.perf_counter()
        conn.execute(text(sql), params)
        timings[name] = round(time.perf_counter() - t0, 2)
        progress(f"  {name}: {timings[name]} s")

    with engine.begin() as conn:
        conn.execute(insert(Unit.__table__), plan_units(at))
    with engine.connect() as conn:
        if pg:
            conn.execute(text("SET synchronous_commit = off"))
            conn.execute(text("SET maintenance_work_mem = '1GB'"))
            conn.execute(text("SET work_mem = '256MB'"))
            if conn.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")):
                # Skip the foreign-key triggers while loading (superusers only).
                conn.execute(text("SET session_replication_role = replica"))
            else:
                progress("  (not a superuser: foreign keys are checked while loading)")
            conn.commit()
        else:
            raw: Any = conn.connection.driver_connection
            raw.create_function("bench_u", 2, _splitmix, deterministic=True)
            for pragma in ("foreign_keys = OFF", "synchronous = OFF", "cache_size = -262144"):
                raw.execute(f"PRAGMA {pragma}")  # outside a transaction, or it is ignored
        indexes = _secondary_indexes(conn)
        for name, _ in indexes:
            conn.execute(text(f'DROP INDEX "{name}"'))
        step("customers", conn, _customers_sql(q, n), at=at_param)
        step("profiles", conn, _profile_sql(q, n))
        step("revenue_records", conn, _revenue_sql(q, records_per_customer), at=at_param)
        conn.execute(text("DROP TABLE bench_profile"))
        conn.commit()
        t0 = time.perf_counter()
        for _, create in indexes:
            conn.exec_driver_sql(create)
            conn.commit()
        timings["indexes"] = round(time.perf_counter() - t0, 2)
        progress(f"  indexes: {timings['indexes']} s ({len(indexes)})")
        if pg:
            conn.execute(text("RESET session_replication_role"))
            for table in ("units", "customers", "revenue_records"):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
        conn.commit()
        if not pg:
            for pragma in ("foreign_keys = ON", "synchronous = NORMAL", "cache_size = -2000"):
                raw.execute(f"PRAGMA {pragma}")
    t0 = time.perf_counter()
    analyze(engine)
    timings["analyze"] = round(time.perf_counter() - t0, 2)
    progress(f"  analyze: {timings['analyze']} s")
    return {"seconds": timings}


def analyze(engine: Engine) -> None:
    """What autovacuum does soon after a bulk load: statistics and the visibility map."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE) units, customers, revenue_records"))
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def tiered(engine: Engine) -> bool:
    """Whether a tiering run has touched the data (it is no longer as seeded)."""
    with engine.connect() as conn:
        runs = conn.scalar(text("SELECT count(*) FROM tiering_runs"))
        some = conn.scalar(
            text("SELECT 1 FROM customers WHERE tier IS NOT NULL AND NOT tier_pinned LIMIT 1")
        )
    return bool(runs or some)


def working_copy(url: str) -> str:
    """A fresh copy of the seeded database of `url`, to run on; returns its URL.

    PostgreSQL: database `<name>_run`, dropped and made again with the seeded one as its
    template (a file copy: the seeded database must have no other connection meanwhile).
    SQLite: `<file>.run.db`, written by SQLite's backup API."""
    import sqlite3

    from kefu.db import make_engine

    u = make_url(url)
    if u.get_backend_name() == "postgresql":
        copy = u.set(database=f"{u.database}_run")
        check_resettable(copy.render_as_string(hide_password=False))
        admin = make_engine(
            u.set(database="postgres").render_as_string(hide_password=False),
            isolation_level="AUTOCOMMIT",
        )
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{copy.database}"'))
                conn.execute(
                    text(
                        f'CREATE DATABASE "{copy.database}" TEMPLATE "{u.database}" '
                        "STRATEGY FILE_COPY"
                    )
                )
        finally:
            admin.dispose()
        return copy.render_as_string(hide_password=False)
    if not u.database or u.database == ":memory:":
        raise SystemExit("a working copy needs a database file")
    target = str(Path(u.database).with_suffix(".run.db"))
    for suffix in ("", "-wal", "-shm"):
        Path(target + suffix).unlink(missing_ok=True)
    with sqlite3.connect(u.database) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    return u.set(database=target).render_as_string(hide_password=False)


def reset_tiering(engine: Engine) -> int:
    """Back to the state right after seeding: no runs, no history, no tiers (pins kept), the
    customers table rewritten compactly as a fresh load leaves it.

    Returns how many customers had been tiered."""
    pg = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        tiered = int(
            conn.scalar(
                text("SELECT count(*) FROM customers WHERE tier IS NOT NULL AND NOT tier_pinned")
            )
            or 0
        )
        if pg:
            conn.execute(text("TRUNCATE tier_history, tiering_proposals, tiering_runs"))
        else:
            for table in ("tier_history", "tiering_proposals", "tiering_runs"):
                conn.execute(text(f"DELETE FROM {table}"))
        county = "(SELECT min(u.id) FROM units AS u WHERE u.region_code = customers.region_code)"
        conn.execute(
            text(
                "UPDATE customers SET tier = CASE WHEN tier_pinned THEN 'A' END, "
                "service_level = NULL, tier_rule = CASE WHEN tier_pinned THEN 'pinned' END, "
                f"revenue_12m = 0, owning_unit_id = {county} "
                "WHERE tier IS NOT NULL OR service_level IS NOT NULL OR revenue_12m <> 0 "
                f"OR owning_unit_id <> {county}"
            )
        )
    if pg:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM FULL customers"))
    else:
        with engine.connect() as conn:  # outside a transaction: the raw connection
            conn.connection.driver_connection.execute("VACUUM")  # type: ignore[union-attr]
    analyze(engine)
    return tiered


# --- checking -----------------------------------------------------------------------------


def counts(engine: Engine) -> dict[str, int] | None:
    """Rows of the seeded tables, or None when the schema is not there."""
    try:
        with engine.connect() as conn:
            return {
                t: int(conn.scalar(text(f"SELECT count(*) FROM {t}")) or 0)
                for t in ("units", "customers", "revenue_records")
            }
    except Exception:
        return None


def check_seed(engine: Engine) -> dict[str, Any]:
    """Facts of the seeded data, and errors (paths, depths, parents, regions) that must be 0."""
    start = RUN_DATE.replace(year=RUN_DATE.year - 1)
    with engine.connect() as conn:
        one = conn.execute(
            text(
                "SELECT count(*), "
                "  sum(CASE WHEN is_group THEN 1 ELSE 0 END), "
                "  sum(CASE WHEN parent_id IS NOT NULL THEN 1 ELSE 0 END), "
                "  sum(CASE WHEN is_important THEN 1 ELSE 0 END), "
                "  sum(CASE WHEN is_potential THEN 1 ELSE 0 END), "
                "  sum(CASE WHEN tier_pinned THEN 1 ELSE 0 END) "
                "FROM customers"
            )
        ).one()
        errors = conn.scalar(
            text(
                "SELECT count(*) FROM customers AS c "
                "LEFT JOIN customers AS p ON p.id = c.parent_id "
                "LEFT JOIN units AS u ON u.id = c.owning_unit_id "
                "WHERE (c.parent_id IS NULL AND (c.path <> '/' || c.id || '/' OR c.depth <> 0)) "
                "   OR (c.parent_id IS NOT NULL AND (p.id IS NULL OR NOT p.is_group "
                "       OR c.path <> p.path || c.id || '/' OR c.depth <> p.depth + 1 "
                "       OR substr(c.region_code, 1, 4) = substr(p.region_code, 1, 4))) "
                "   OR u.id IS NULL OR u.region_code <> c.region_code"
            )
        )
        rev = conn.execute(
            text(
                "SELECT count(*), sum(amount), "
                "  sum(CASE WHEN date > :start THEN 1 ELSE 0 END), "
                "  sum(CASE WHEN date > :start THEN amount ELSE 0 END), min(date), max(date) "
                "FROM revenue_records"
            ).bindparams(bindparam("start", start, type_=Date))
        ).one()
        biggest = conn.execute(
            text(
                "SELECT owning_unit_id, count(*) AS n FROM customers "
                "GROUP BY owning_unit_id ORDER BY n DESC LIMIT 1"
            )
        ).one()
    n = int(one[0] or 0)
    records = int(rev[0] or 0)
    return {
        "customers": n,
        "group_heads": int(one[1] or 0),
        "branches": int(one[2] or 0),
        "important": int(one[3] or 0),
        "potential": int(one[4] or 0),
        "pinned": int(one[5] or 0),
        "revenue_records": records,
        "records_in_window_share": round(int(rev[2] or 0) / records, 3) if records else None,
        "revenue_in_window_share": round(float(rev[3] or 0) / float(rev[1]), 3) if rev[1] else None,
        "revenue_dates": [str(rev[4]), str(rev[5])],
        "biggest_county": {"unit_id": int(biggest[0]), "customers": int(biggest[1])},
        "errors": int(errors or 0),
    }
