"""Churn-risk list for a province over 1,000,000 customers: ≤ 5 s, set-based (issue 6).

Seeds (PostgreSQL, database kefu_bench_churn, kept for --reuse): the customer benchmarks'
organisation and customers with 12 monthly revenue records each over three years
(benchmarks/_seed_customers.py; 12,000,000 records), then the other reasons a customer
is flagged for: 20,000 complaints in the last 90 days, 200,000 survey answers over the
last year (a sixth of them low), 20,000 overdue return visits. Those rows are loaded with
foreign-key triggers off (as the customer seed is): their ticket ids name no ticket, which
the churn query never reads.

Measures `kefu.loyalty.queries.churn_risk` for the province (the whole tree), in process:
one warm-up, then --runs timed runs; prints JSON with the median and max against 5 s.
Beside it, the worker's daily rebuild of the revenue trend the list reads (every
customer's last and prior 12 months, one INSERT … SELECT over the revenue records).

    .venv/bin/python benchmarks/churn_risk.py [--customers 1000000] [--reuse] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _seed_customers as seedlib
from benchmarks._common import emit, machine, median, progress, stamp

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/kefu_bench_churn"
AT = datetime(2026, 10, 31, 12, tzinfo=UTC)  # the seed's run date
TARGET_S = 5.0


def seed_reasons(engine: Any, n: int) -> dict[str, float]:
    timings = {}
    with engine.connect() as conn:
        conn.execute(text("SET session_replication_role = replica"))
        conn.execute(text("SET synchronous_commit = off"))
        t0 = time.perf_counter()
        conn.execute(
            text(
                """
                INSERT INTO complaints (ticket_id, customer_id, owning_unit_id, severity,
                    severity_reason, cause_code, remedy, compensation_state, verification,
                    created_at, updated_at, version)
                SELECT 1000000000 + g, c.id, c.owning_unit_id, 1 + g % 3, '', 'billing', '',
                       'none', '', :at - (g % 80) * interval '1 day',
                       :at - (g % 80) * interval '1 day', 1
                FROM generate_series(1::bigint, 20000) g
                JOIN customers c ON c.id = 1 + (g * 7919) % :n
                """
            ),
            {"at": AT, "n": n},
        )
        timings["complaints"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        conn.execute(
            text(
                """
                INSERT INTO survey_answers (template_id, channel, customer_id, owning_unit_id,
                    tier, service_level, category_code,
                    e_reliability, p_reliability, e_responsiveness, p_responsiveness,
                    e_assurance, p_assurance, e_empathy, p_empathy, e_tangibles, p_tangibles,
                    expected_total, perceived_total, csat, nps, comment, answered_at, month)
                SELECT 1, 'link', c.id, c.owning_unit_id, '', '', '',
                       6, s.p, 6, s.p, 6, s.p, 6, s.p, 6, s.p, 30, 5 * s.p, 4, 8, '',
                       :at - (g % 360) * interval '1 day',
                       date_trunc('month', :at - (g % 360) * interval '1 day')::date
                FROM generate_series(1::bigint, 200000) g
                JOIN customers c ON c.id = 1 + (g * 104729) % :n
                CROSS JOIN LATERAL (SELECT CASE WHEN g % 6 = 0 THEN 3 ELSE 6 END AS p) s
                """
            ),
            {"at": AT, "n": n},
        )
        timings["survey_answers"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        conn.execute(
            text(
                """
                INSERT INTO return_visits (kind, method, customer_id, owning_unit_id, due_at,
                    state, attempts, follow_up, customer_words, escalation, dedupe_key,
                    created_at, version)
                SELECT 'periodic', 'onsite', c.id, c.owning_unit_id,
                       :at - (1 + g % 20) * interval '1 day', 'scheduled', 0, false, '', 0,
                       'bench:' || g, :at - interval '40 days', 1
                FROM generate_series(1::bigint, 20000) g
                JOIN customers c ON c.id = 1 + (g * 15485863) % :n
                """
            ),
            {"at": AT, "n": n},
        )
        timings["return_visits"] = round(time.perf_counter() - t0, 2)
        conn.execute(text("RESET session_replication_role"))
        conn.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) complaints, survey_answers, return_visits"))
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("KEFU_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--records-per-customer", type=int, default=12)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="Measure an already seeded database.")
    args = parser.parse_args(argv)

    from kefu.config import Settings, use_settings
    from kefu.db import make_engine, make_sessionmaker
    from kefu.loyalty import queries
    from kefu.units.models import Unit

    url = args.database_url
    use_settings(Settings(database_url=url))
    seeded: dict[str, Any] = {"reused": True}
    if not args.reuse:
        progress(f"rebuilding {url}")
        seedlib.reset_database(url)
        engine = make_engine(url)
        progress(f"seeding {args.customers} customers, {args.records_per_customer} records each")
        seeded = {
            "reused": False,
            **seedlib.seed(engine, args.customers, args.records_per_customer),
        }
        progress("seeding complaints, answers and overdue visits")
        seeded["reasons"] = seed_reasons(engine, args.customers)
    else:
        from kefu import schema

        schema.upgrade(url)  # a database seeded by an older Kefu gets the newer tables
        engine = make_engine(url)
        with engine.connect() as conn:
            has_reasons = conn.scalar(text("SELECT count(*) FROM complaints"))
        if not has_reasons:  # a seed that stopped after the customers
            progress("seeding complaints, answers and overdue visits")
            seeded["reasons"] = seed_reasons(engine, args.customers)
    factory = make_sessionmaker(engine)
    from kefu.loyalty import service as loyalty

    with factory() as session:  # the worker's daily rebuild, timed on its own
        t0 = time.perf_counter()
        trends = loyalty.refresh_revenue_trend(session, AT.date())
        session.commit()
        refresh_s = round(time.perf_counter() - t0, 2)
        progress(f"revenue trend of {trends} customers rebuilt in {refresh_s} s")
    samples: list[float] = []
    found: tuple[int, list[Any]] = (0, [])
    with factory() as session:
        province = session.get(Unit, 1)
        assert province is not None and province.parent_id is None
        n = session.scalar(text("SELECT count(*) FROM customers"))
        for i in range(args.runs + 1):
            t0 = time.perf_counter()
            rows, total = queries.churn_risk(session, province, AT, limit=200)
            elapsed = time.perf_counter() - t0
            if i:  # the first run warms the cache
                samples.append(elapsed)
            found = (total, rows)
            progress(f"run {i}: {elapsed:.2f} s, {total} at risk")
    total, rows = found
    reasons: dict[str, int] = {}
    for r in rows:
        for reason in r.reasons:
            reasons[reason] = reasons.get(reason, 0) + 1
    result = {
        "benchmark": "churn_risk",
        "date": stamp(),
        "database": "postgresql",
        "customers": n,
        "seed": seeded,
        "runs_s": [round(s, 3) for s in samples],
        "median_s": round(median(samples), 3),
        "max_s": round(max(samples), 3),
        "target_s": TARGET_S,
        "pass": max(samples) <= TARGET_S,
        "at_risk_total": total,
        "daily_trend_rebuild": {"customers": trends, "seconds": refresh_s},
        "first_page_reasons": reasons,
        "load_average_1m": os.getloadavg()[0],
        "machine": machine(),
    }
    emit(result)
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
