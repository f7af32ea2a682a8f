"""Figures: `kefu serve` answers within 3 s of being started, and one idle web process
holds at most 150 MB of resident memory.

Each run happens in a fresh temporary directory with a fresh SQLite database:
`kefu init` first builds the schema (timed apart: it is the install step, not a restart),
then `kefu serve --port P` is spawned and GET /healthz is polled every 10 ms; "ready" is
the time from spawning the process to the first 200. After `--idle` seconds of quiet
the resident memory (VmRSS) of the process and any children is read from /proc.
A second series starts `kefu serve` on a database that does not exist yet ("cold": the
schema is created during start-up) for comparison; the figure is the first series.

    .venv/bin/python -m benchmarks.serve_startup

Prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import emit, free_port, machine, median, progress, stamp

TARGET_READY_S = 3.0
TARGET_RSS_MB = 150.0


def kefu_command() -> list[str]:
    """The installed `kefu` script beside this interpreter (the venv's), else `-m kefu.cli`."""
    script = Path(sys.executable).parent / "kefu"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from kefu.cli import main; main()"]


def environment(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}
    env["KEFU_DATABASE_URL"] = "sqlite:///" + str(workdir / "var" / "kefu.db")
    env["KEFU_DATA_DIR"] = str(workdir / "var")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (via /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return out


def status_field(pid: int, field: str) -> int:
    """A number from /proc/<pid>/status (kB for memory fields); 0 when unreadable."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def one_run(init_first: bool, idle: float, timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kefu-bench-") as tmp:
        workdir = Path(tmp)
        env = environment(workdir)
        result: dict[str, Any] = {}
        if init_first:
            t0 = time.perf_counter()
            subprocess.run(
                [*kefu_command(), "init"],
                cwd=workdir,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            result["init_s"] = round(time.perf_counter() - t0, 3)
        port = free_port()
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [*kefu_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            ready = None
            while time.perf_counter() - t0 < timeout:
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    raise SystemExit(f"kefu serve exited with {proc.returncode}: {err[-2000:]}")
                if healthy(port):
                    ready = time.perf_counter() - t0
                    break
                time.sleep(0.01)
            if ready is None:
                raise SystemExit(f"kefu serve did not answer /healthz within {timeout} s")
            time.sleep(idle)
            pids = process_tree(proc.pid)
            result.update(
                ready_s=round(ready, 3),
                rss_mb=round(sum(status_field(p, "VmRSS") for p in pids) / 1024, 1),
                peak_rss_mb=round(sum(status_field(p, "VmHWM") for p in pids) / 1024, 1),
                processes=len(pids),
                threads=status_field(proc.pid, "Threads"),
            )
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return result


def series(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = [r[key] for r in runs]
    return {
        "median": round(median(values), 3),
        "max": round(max(values), 3),
        "min": round(min(values), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="starts per series")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds idle before RSS")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-start series")
    args = parser.parse_args(argv)

    warm: list[dict[str, Any]] = []
    cold: list[dict[str, Any]] = []
    for i in range(args.repeat):
        progress(f"start {i + 1}/{args.repeat} (after kefu init)")
        warm.append(one_run(True, args.idle, args.timeout))
        progress(f"  {warm[-1]}")
        if not args.no_cold:
            progress(f"start {i + 1}/{args.repeat} (cold: empty database)")
            cold.append(one_run(False, args.idle, args.timeout))
            progress(f"  {cold[-1]}")

    ready, rss = series(warm, "ready_s"), series(warm, "rss_mb")
    result: dict[str, Any] = {
        "benchmark": "serve_startup",
        "date": stamp(),
        "database": "sqlite",
        "command": "kefu serve --host 127.0.0.1 --port P (embedded worker on, the default)",
        "repeat": args.repeat,
        "idle_s": args.idle,
        "ready_s": ready,
        "rss_mb": rss,
        "target_ready_s": TARGET_READY_S,
        "target_rss_mb": TARGET_RSS_MB,
        "pass_ready": ready["max"] <= TARGET_READY_S,
        "pass_rss": rss["max"] <= TARGET_RSS_MB,
        "runs": warm,
        "init_s": series(warm, "init_s"),
        "machine": machine(),
    }
    result["pass"] = result["pass_ready"] and result["pass_rss"]
    if cold:
        result["cold"] = {
            "ready_s": series(cold, "ready_s"),
            "rss_mb": series(cold, "rss_mb"),
            "runs": cold,
        }
    emit(result)
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
