"""Run every benchmark, each in its own process, and print their results as one JSON list.

    .venv/bin/python -m benchmarks.run_all                  # units_list (PostgreSQL) + serve
    .venv/bin/python -m benchmarks.run_all --with-sqlite    # also units_list on SQLite

Exits non-zero when a figure misses its target or a benchmark fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import REPO, emit, progress


def run(module: str, *args: str) -> dict[str, Any]:
    progress(f"running {module} {' '.join(args)}")
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        result: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {"benchmark": module, "args": list(args), "error": f"exit {proc.returncode}"}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL database for units_list to rebuild")
    parser.add_argument(
        "--with-sqlite", action="store_true", help="also run units_list on var/bench.db"
    )
    args = parser.parse_args(argv)

    pg = ["--database-url", args.database_url] if args.database_url else []
    results = [run("units_list", *pg)]
    if args.with_sqlite:
        results.append(run("units_list", "--database-url", "sqlite:///var/bench.db"))
    results.append(run("serve_startup"))
    emit(results)
    return 0 if all(r.get("pass") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
