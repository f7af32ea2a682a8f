"""Figure: a tiering run over 1,000,000 customers and 12,000,000 revenue records on
PostgreSQL takes <= 30 s as a dry run and <= 60 s with applying it, in a process that peaks
at <= 1 GB resident; on SQLite, 100,000 customers and 1,200,000 records take <= 20 s.

The database is seeded once (schema by Alembic, then customers and revenue seeded
set-based by benchmarks/_seed_customers.py) and kept as it is: the run happens in a working
copy made from it (PostgreSQL: `CREATE DATABASE <name>_run TEMPLATE <name>`, a file copy of
a few seconds; SQLite: the backup API), so every measurement starts from the same freshly
loaded, never tiered data. Later runs reuse the seeded database when it holds the requested
size (its schema is brought to head first). Then `kefu.tiering.service.start_run` and
`apply_run` run in this process, each in its own unit of work (committed), as `kefu
retier` runs them.

    .venv/bin/python -m benchmarks.tiering_run                 # PostgreSQL, 1 M customers
    .venv/bin/python -m benchmarks.tiering_run --reuse         # only reuse; never seed
    .venv/bin/python -m benchmarks.tiering_run --rebuild       # drop and seed again
    .venv/bin/python -m benchmarks.tiering_run --database-url sqlite:///var/bench_tiering.db

Prints one JSON object on stdout (progress on stderr); exits 1 when a target is missed, a
check fails, the data is not of the figure's size, or --explain was given.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url

from benchmarks import _seed_customers as seeding
from benchmarks._common import emit, ensure_postgres_database, machine, progress, stamp

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/kefu_bench_tiering"
# The figures, and the size each one is stated for (customers, records per customer).
TARGETS: dict[str, dict[str, float]] = {
    "postgresql": {"dry_run_s": 30.0, "total_s": 60.0, "peak_rss_mb": 1024.0},
    "sqlite": {"total_s": 20.0, "peak_rss_mb": 1024.0},
}
FIGURE_SIZE = {"postgresql": (1_000_000, 12), "sqlite": (100_000, 12)}
SLOW_STATEMENT_S = 0.05  # statements at least this slow are listed in the result


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def reset_peak_rss() -> bool:
    """Forget the peak so far (Linux: the seeding's memory is no part of the figure), so
    ru_maxrss afterwards is the run's own peak. False when the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def current_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def backend_usage(pid: int | None) -> tuple[float, int, int] | None:
    """CPU seconds, bytes read and bytes written by a PostgreSQL backend so far (Linux, same
    machine; the I/O counters need the rights to read the server's /proc entries). CPU
    time does not grow with the machine's load as wall time does: on a shared machine it is
    the steadier measure of the database's work."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None
    read = written = 0
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            name, _, value = line.partition(":")
            if name == "read_bytes":
                read = int(value)
            elif name == "write_bytes":
                written = int(value)
    except (OSError, ValueError):
        pass
    return cpu, read, written


class StatementLog:
    """Times every statement the engine runs, with the PostgreSQL backend's CPU time and
    I/O (and, with `explain`, wraps the writing statements of PostgreSQL in EXPLAIN
    (ANALYZE, BUFFERS) and keeps their plans)."""

    def __init__(self, engine: Engine, explain: bool = False) -> None:
        self.engine = engine
        self.explain = explain and engine.dialect.name == "postgresql"
        self.phase = ""
        self.rows: list[dict[str, Any]] = []
        self.plans: list[dict[str, Any]] = []

    def __enter__(self) -> StatementLog:
        event.listen(self.engine, "before_cursor_execute", self._before, retval=True)
        event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)

    def _before(
        self, conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool
    ) -> tuple[str, Any]:
        head = " ".join(statement.split()[:3]).upper()
        # The set-based writes (INSERT … SELECT, UPDATE of many rows), not the ORM's own
        # single-row writes, whose row counts the ORM checks.
        wrap = (
            self.explain
            and not many
            and "RETURNING" not in statement.upper()
            and (
                (head.startswith("INSERT") and "SELECT" in statement.upper())
                or (head.startswith("UPDATE") and head != "UPDATE TIERING_RUNS SET")
            )
        )
        pid = getattr(getattr(conn.connection.driver_connection, "info", None), "backend_pid", None)
        conn.info["bench_stmt"] = (time.perf_counter(), wrap, statement, pid, backend_usage(pid))
        return ("EXPLAIN (ANALYZE, BUFFERS) " + statement if wrap else statement), params

    def _after(
        self, conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool
    ) -> None:
        t0, wrapped, original, pid, usage0 = conn.info.pop(
            "bench_stmt", (time.perf_counter(), False, "", None, None)
        )
        seconds = time.perf_counter() - t0
        row: dict[str, Any] = {"phase": self.phase, "s": seconds, "sql": original}
        usage1 = backend_usage(pid)
        if usage0 and usage1:
            row["cpu_s"] = usage1[0] - usage0[0]
            row["read_mb"] = (usage1[1] - usage0[1]) / 2**20
            row["written_mb"] = (usage1[2] - usage0[2]) / 2**20
        self.rows.append(row)
        if wrapped:
            plan = "\n".join(row[0] for row in cursor.fetchall())
            self.plans.append({"phase": self.phase, "sql": original, "plan": plan})

    def slow(self) -> list[dict[str, Any]]:
        return [
            {
                "phase": r["phase"],
                "s": round(r["s"], 3),
                **{k: round(r[k], 2) for k in ("cpu_s", "read_mb", "written_mb") if k in r},
                "sql": " ".join(r["sql"].split())[:160],
            }
            for r in self.rows
            if r["s"] >= SLOW_STATEMENT_S
        ]

    def database_cpu_s(self, phase: str) -> float | None:
        """CPU seconds of the database backend in a phase (None where not measurable)."""
        rows = [r for r in self.rows if r["phase"] == phase]
        if not rows or any("cpu_s" not in r for r in rows):
            return None
        return round(sum(r["cpu_s"] for r in rows), 2)


def checkpoint(engine: Engine) -> None:
    """Start the run from a clean slate: the load's dirty pages written out, so the run does
    not pay for them, nor meet a checkpoint the load made due (superusers and pg_checkpoint
    only; skipped otherwise)."""
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("CHECKPOINT"))
    except Exception as exc:
        progress(f"no CHECKPOINT before the run: {exc.__class__.__name__}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("KEFU_BENCH_TIERING_DATABASE_URL", DEFAULT_URL),
        help="database to REBUILD (default $KEFU_BENCH_TIERING_DATABASE_URL or %(default)s)",
    )
    parser.add_argument(
        "--customers",
        type=int,
        help="customers to seed (default: 1,000,000 on PostgreSQL, 100,000 on SQLite)",
    )
    parser.add_argument("--records-per-customer", type=int, default=12)
    parser.add_argument(
        "--reuse",
        "--skip-seed",
        action="store_true",
        help="reuse the seeded data (whatever its size), never seed. Without it the data "
        "is reused when it has the requested size, and seeded otherwise",
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="drop and seed again even when the size fits"
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="PostgreSQL: add EXPLAIN (ANALYZE, BUFFERS) of the writing statements "
        "(the times then include EXPLAIN's overhead and are no figure)",
    )
    args = parser.parse_args(argv)

    from kefu.config import Settings, use_settings
    from kefu.db import make_engine, make_sessionmaker, unit_of_work
    from kefu.scope import SYSTEM
    from kefu.tiering import service as tiering

    url = args.database_url
    backend = make_url(url).get_backend_name()
    if backend not in TARGETS:
        parser.error("--database-url must be a PostgreSQL or SQLite URL")
    figure_customers, figure_records = FIGURE_SIZE[backend]
    n = args.customers or figure_customers
    use_settings(Settings(database_url=url, secret_key="bench", embedded_worker=False))

    if args.reuse and args.rebuild:
        parser.error("--reuse and --rebuild exclude each other")
    started = time.perf_counter()
    have = None
    if not args.rebuild:
        if backend == "postgresql":
            ensure_postgres_database(url)
        probe = make_engine(url)
        have = seeding.counts(probe)
        probe.dispose()
    wanted = {"customers": n, "revenue_records": n * args.records_per_customer}
    reuse = bool(have and have["customers"]) and (
        args.reuse or all(have is not None and have[k] == v for k, v in wanted.items())
    )
    if args.reuse and not reuse:
        raise SystemExit("--reuse: the database holds no seeded customers")
    seed_info: dict[str, Any] = {"seeded": not reuse}
    if reuse:
        from kefu import schema

        progress(f"reusing {have}")
        schema.upgrade(url)  # migrations landed since the seed apply to it
        engine = make_engine(url)
        if seeding.tiered(engine):  # seeded before this benchmark kept its data pristine
            progress("the seeded data was tiered: setting it back")
            seed_info["previously_tiered"] = seeding.reset_tiering(engine)
        engine.dispose()
    else:
        progress(f"rebuilding {make_url(url).render_as_string(hide_password=True)}")
        seeding.reset_database(url)
        engine = make_engine(url)
        progress(f"seeding {n} customers x {args.records_per_customer} revenue records")
        seed_info.update(seeding.seed(engine, n, args.records_per_customer))
        engine.dispose()
    seed_info["total_s"] = round(time.perf_counter() - started, 1)
    t0 = time.perf_counter()
    url = seeding.working_copy(url)
    seed_info["copy_s"] = round(time.perf_counter() - t0, 1)
    progress(f"working copy {make_url(url).database}: {seed_info['copy_s']} s")
    engine = make_engine(url)
    facts = seeding.check_seed(engine)
    progress(f"seeded data: {facts}")
    if facts["errors"]:
        raise SystemExit(f"{facts['errors']} customers have a wrong path, parent or region")
    with engine.connect() as conn:
        pg_version = conn.scalar(text("SHOW server_version")) if backend == "postgresql" else None

    if backend == "postgresql":
        checkpoint(engine)
    factory = make_sessionmaker(engine)
    engine.dispose()  # the run starts on a fresh connection
    gc.collect()
    peak_with_seed = peak_rss_mb()
    peak_reset = reset_peak_rss()
    rss_before = current_rss_mb()
    load_before = os.getloadavg()[0]
    progress(f"dry run (run date {seeding.RUN_DATE})")
    with StatementLog(engine, explain=args.explain) as log:
        log.phase = "dry_run"
        t0 = time.perf_counter()
        with unit_of_work(factory) as session:
            run = tiering.start_run(session, SYSTEM, seeding.RUN_DATE)
            run_id, summary = run.id, run.summary
        t1 = time.perf_counter()
        progress(f"dry run: {t1 - t0:.2f} s; applying")
        log.phase = "apply"
        with unit_of_work(factory) as session:
            tiering.apply_run(session, SYSTEM, run_id)
        t2 = time.perf_counter()
        progress(f"apply: {t2 - t1:.2f} s")
    peak = peak_rss_mb()
    load_after = os.getloadavg()[0]

    with engine.connect() as conn:
        untiered = conn.scalar(text("SELECT count(*) FROM customers WHERE tier IS NULL"))
        history = conn.scalar(
            text("SELECT count(*) FROM tier_history WHERE run_id = :r"), {"r": run_id}
        )
        proposals = conn.scalar(
            text("SELECT count(*) FROM tiering_proposals WHERE run_id = :r"), {"r": run_id}
        )
    checks = {
        "proposals": int(proposals or 0),
        "history_rows": int(history or 0),
        "untiered_after_apply": int(untiered or 0),
        "summary_adds_up": sum(summary["tiers"].values()) == facts["customers"],
    }
    checks["ok"] = (
        checks["proposals"] == facts["customers"]
        and checks["untiered_after_apply"] == 0
        and bool(checks["summary_adds_up"])
    )

    measured = {
        "dry_run_s": round(t1 - t0, 2),
        "apply_s": round(t2 - t1, 2),
        "total_s": round(t2 - t0, 2),
        "peak_rss_mb": peak,
    }
    targets = TARGETS[backend]
    passed = {k: measured[k] <= v for k, v in targets.items()}
    at_size = (facts["customers"], facts["revenue_records"]) == (
        figure_customers,
        figure_customers * figure_records,
    )
    result: dict[str, Any] = {
        "benchmark": "tiering_run",
        "date": stamp(),
        "database": backend,
        "customers": facts["customers"],
        "revenue_records": facts["revenue_records"],
        "figure_size": at_size,
        "run_date": seeding.RUN_DATE.isoformat(),
        **measured,
        "database_cpu_s": {
            "dry_run": log.database_cpu_s("dry_run"),
            "apply": log.database_cpu_s("apply"),
        },
        "peak_rss_is_run_only": peak_reset,
        "peak_rss_with_seeding_mb": peak_with_seed,
        "rss_before_run_mb": rss_before,
        "load_avg_1m": [round(load_before, 2), round(load_after, 2)],
        "targets": targets,
        "pass": passed,
        "summary": summary["tiers"],
        "levels": summary["levels"],
        "ownership_moves": summary["ownership_moves"],
        "rules": summary["rules"],
        "checks": checks,
        "seed": {**seed_info, **facts},
        "slow_statements": log.slow(),
        "explain": bool(log.explain),
        "machine": machine(pg_version),
    }
    if log.explain:
        result["plans"] = log.plans
    emit(result)
    return 0 if all(passed.values()) and checks["ok"] and at_size and not log.explain else 1


if __name__ == "__main__":
    sys.exit(main())
