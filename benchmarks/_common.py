"""Helpers shared by the benchmark scripts: statistics, the machine, databases, JSON out."""

from __future__ import annotations

import json
import math
import os
import platform
import socket
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
# Databases a benchmark must never reset: the test suite's.
PROTECTED_DATABASES = {"test", "postgres", "template0", "template1"}


# --- statistics ---------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: the smallest value with at least p % of values at or below."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def median(values: Sequence[float]) -> float:
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def latency_summary(samples_ns: Sequence[int]) -> dict[str, float]:
    """p50 / p95 / p99 / max / mean of request times, in milliseconds (3 decimals)."""
    ms = sorted(v / 1e6 for v in samples_ns)
    return {
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(ms[-1], 3),
        "mean_ms": round(sum(ms) / len(ms), 3),
    }


# --- the machine --------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def machine(postgres_version: str | None = None) -> dict[str, Any]:
    """What the figures were measured on (goes into every JSON result)."""
    out: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "mem_gib": _mem_total_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    if postgres_version:
        out["postgresql"] = postgres_version
    return out


def stamp() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


# --- databases ----------------------------------------------------------------------------


def ensure_postgres_database(url: str) -> None:
    """Create the database of `url` when it does not exist (via a maintenance database)."""
    from kefu.db import make_engine  # only kefu.db makes engines

    u = make_url(url)
    name = u.database
    if not name:
        raise SystemExit("the PostgreSQL URL names no database")
    last_error: Exception | None = None
    for maintenance in ("postgres", "test"):
        engine = make_engine(
            u.set(database=maintenance).render_as_string(hide_password=False),
            isolation_level="AUTOCOMMIT",
        )
        try:
            with engine.connect() as conn:
                exists = conn.scalar(
                    text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                )
                if not exists:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
            return
        except Exception as exc:  # try the next maintenance database
            last_error = exc
        finally:
            engine.dispose()
    raise SystemExit(f"cannot create database {name!r}: {last_error}")


def check_resettable(url: str) -> None:
    """Refuse to wipe the test suite's database or a maintenance database."""
    u = make_url(url)
    if u.get_backend_name() != "postgresql":
        return
    protected = set(PROTECTED_DATABASES)
    test_url = os.environ.get("KEFU_TEST_DATABASE_URL")
    if test_url:
        protected.add(make_url(test_url).database or "")
    if u.database in protected:
        raise SystemExit(
            f"refusing to reset database {u.database!r}: benchmarks need a database of their own"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def emit(result: Any) -> None:
    """The result as JSON on stdout (progress goes to stderr)."""
    json.dump(result, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
