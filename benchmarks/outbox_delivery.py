"""Figures: outbox delivery to a local webhook receiver.

1. Throughput: >= 500 events/s with one worker (`kefu worker`, one process): the events
   are written to the outbox in one transaction while the worker idles, and the clock runs
   until the receiver has accepted every one (routing, claims, signed POSTs, outcomes).
2. Outage: 10,000 events while the receiver is down for 60 s: the worker retries with its
   backoff (the default settings), the receiver comes back on the same port, and every
   event arrives; the receiver is idempotent (it processes each Idempotency-Key once) and
   counts what arrives twice: the figure is none twice, none lost.

The receiver is a separate process (a threaded http.server on 127.0.0.1 that verifies
every signature); the worker is the real `kefu worker` in its own process; the database is
rebuilt first (PostgreSQL by default, `--sqlite` for the embedded default).

    .venv/bin/python -m benchmarks.outbox_delivery                   # both figures
    .venv/bin/python -m benchmarks.outbox_delivery --events 5000 --outage 0   # quick
    .venv/bin/python -m benchmarks.outbox_delivery --sqlite

Prints one JSON object on stdout (progress on stderr), with the load average of the
machine before and after; exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from benchmarks._common import (
    REPO,
    check_resettable,
    emit,
    ensure_postgres_database,
    free_port,
    machine,
    progress,
    stamp,
)

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/kefu_bench_delivery"
TARGET_RATE = 500.0
SECRET_KEY = "bench-delivery-secret-key"


# --- the receiver (its own process) -----------------------------------------------------------


def receiver_main(port: int, secret: str) -> None:
    seen: Counter[str] = Counter()
    bad = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body leave at once

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            ts = self.headers.get("Kefu-Timestamp", "")
            mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256)
            ok = hmac.compare_digest("v1=" + mac.hexdigest(), self.headers["Kefu-Signature"])
            with lock:
                if ok:
                    seen[self.headers["Idempotency-Key"]] += 1
                else:
                    bad[0] += 1
            self._answer(200 if ok else 401, b"{}")

        def do_GET(self) -> None:
            with lock:
                stats = {
                    "received": sum(seen.values()),
                    "unique": len(seen),
                    "duplicates": sum(n - 1 for n in seen.values()),
                    "bad_signatures": bad[0],
                }
            self._answer(200, json.dumps(stats).encode())

        def _answer(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


class ReceiverProcess:
    """The receiver runs in its own process; "down" means the process is gone (connections
    refused). Its counts survive a restart: they are carried over by the benchmark."""

    def __init__(self, port: int, secret: str) -> None:
        self.port, self.secret = port, secret
        self.proc: subprocess.Popen[bytes] | None = None
        self.carried: dict[str, int] = {}

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.outbox_delivery", "--receiver", str(self.port)],
            cwd=REPO,
            env={**os.environ, "BENCH_SECRET": self.secret},
        )
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                self.stats()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the receiver did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=5) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]


# --- the benchmark ----------------------------------------------------------------------------


def reset_database(url: str) -> None:
    from kefu import schema
    from kefu.db import make_engine

    if url.startswith("postgresql"):
        check_resettable(url)
        ensure_postgres_database(url)
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    schema.upgrade(url)


def subscribe(url: str, receiver_url: str) -> str:
    from kefu.channels import service
    from kefu.channels.schemas import WebhookIn
    from kefu.db import make_engine, make_sessionmaker, unit_of_work
    from kefu.scope import SYSTEM

    engine = make_engine(url)
    with unit_of_work(make_sessionmaker(engine)) as s:
        _, secret = service.create_webhook(
            s, SYSTEM, WebhookIn(name="bench", url=receiver_url, topics=["ticket.created"])
        )
    engine.dispose()
    return secret


def write_events(url: str, start: int, n: int) -> None:
    """n outbox rows in one transaction, as causes write them (one per ticket created)."""
    from kefu.clock import now
    from kefu.db import make_engine

    engine = make_engine(url)
    at = now()
    rows = [
        {
            "topic": "ticket.created",
            "recipient": "unit:1",
            "payload": json.dumps(
                {"ticket_id": i, "number": f"T2026-{i:07d}", "subject": f"工单 {i}"}
            ),
            "dedupe_key": f"bench:{i}",
            "at": at,
        }
        for i in range(start, start + n)
    ]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO outbox (topic, recipient, payload, dedupe_key, status, attempts, "
                "available_at, created_at) VALUES (:topic, :recipient, :payload, :dedupe_key, "
                "'pending', 0, :at, :at)"
            ),
            rows,
        )
    engine.dispose()


def db_counts(url: str) -> dict[str, int]:
    from kefu.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, count(*) FROM deliveries GROUP BY status"))
        out = {str(s): int(n) for s, n in rows}
        out["outbox_pending"] = int(
            conn.scalar(text("SELECT count(*) FROM outbox WHERE status = 'pending'")) or 0
        )
    engine.dispose()
    return out


def start_worker(url: str, data_dir: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "src"),
        "KEFU_DATABASE_URL": url,
        "KEFU_SECRET_KEY": SECRET_KEY,
        "KEFU_DATA_DIR": data_dir,
        "KEFU_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "KEFU_RETIER_INTERVAL_DAYS": "0",
        "KEFU_WORKER_INTERVAL_SECONDS": "3600",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "kefu.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        cwd=data_dir,
    )


def wait_for(receiver: ReceiverProcess, unique: int, timeout: float) -> dict[str, int]:
    end = time.monotonic() + timeout
    while True:
        stats = receiver.stats()
        if stats["unique"] >= unique or time.monotonic() > end:
            return stats
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("KEFU_BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--sqlite", action="store_true", help="use a SQLite file instead")
    parser.add_argument("--events", type=int, default=10_000, help="events for the throughput")
    parser.add_argument("--outage-events", type=int, default=10_000)
    parser.add_argument("--outage", type=float, default=60.0, help="seconds down (0: skip)")
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.receiver:
        receiver_main(args.receiver, os.environ["BENCH_SECRET"])
        return 0

    os.environ["KEFU_SECRET_KEY"] = SECRET_KEY
    os.environ["KEFU_WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "true"
    tmp = tempfile.mkdtemp(prefix="kefu-bench-delivery-")
    url = f"sqlite:///{tmp}/kefu.db" if args.sqlite else args.url
    os.environ["KEFU_DATABASE_URL"] = url
    os.environ["KEFU_DATA_DIR"] = tmp
    load_before = os.getloadavg()
    progress(f"database {url.split('@')[-1]}: rebuilding")
    reset_database(url)
    port = free_port()
    secret = subscribe(url, f"http://127.0.0.1:{port}/hook")
    receiver = ReceiverProcess(port, secret)
    receiver.start()
    worker = start_worker(url, tmp)
    result: dict[str, Any] = {"benchmark": "outbox_delivery", "at": stamp()}
    ok = True
    try:
        time.sleep(3)  # the worker is up and idle
        # 1. throughput
        progress(f"throughput: {args.events} events")
        write_events(url, 1, args.events)
        t0 = time.perf_counter()
        stats = wait_for(receiver, args.events, 600)
        elapsed = time.perf_counter() - t0
        rate = stats["unique"] / elapsed
        ok &= rate >= TARGET_RATE and stats["unique"] == args.events
        result["throughput"] = {
            "events": args.events,
            "seconds": round(elapsed, 2),
            "events_per_s": round(rate, 1),
            "target_events_per_s": TARGET_RATE,
            "receiver": stats,
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }
        progress(f"throughput: {rate:.0f} events/s")
        # 2. outage
        if args.outage > 0:
            base = stats["unique"]
            before = dict(stats)
            receiver.stop()
            progress(f"outage: receiver down, {args.outage_events} events, {args.outage:.0f} s")
            write_events(url, 1_000_000, args.outage_events)
            down_at = time.perf_counter()
            time.sleep(args.outage)
            during = db_counts(url)
            receiver.start()  # a fresh process: its counts start at zero
            back = time.perf_counter()
            stats = wait_for(receiver, args.outage_events, 900)
            caught_up = time.perf_counter() - back
            time.sleep(2)  # anything late would show up as a duplicate
            stats = receiver.stats()
            after = db_counts(url)
            lost = args.outage_events - stats["unique"]
            ok &= lost == 0 and stats["duplicates"] == 0 and before["duplicates"] == 0
            result["outage"] = {
                "events": args.outage_events,
                "down_seconds": round(back - down_at, 1),
                "pending_while_down": during.get("pending", 0) + during.get("outbox_pending", 0),
                "caught_up_seconds_after_return": round(caught_up, 1),
                "received_after_return": stats,
                "lost": lost,
                "delivered_twice": stats["duplicates"],
                "deliveries_by_status": after,
                "throughput_phase_unique": base,
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
            progress(f"outage: caught up {caught_up:.1f} s after the return, lost {lost}")
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()
        receiver.stop()
    result["database"] = "sqlite" if args.sqlite else "postgresql"
    result["settings"] = "defaults (batch 200, 8 at once, backoff 10 s doubling, cap 1 h)"
    result["load_avg_before"] = [round(x, 2) for x in load_before]
    result["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    result["machine"] = machine()
    result["ok"] = bool(ok)
    emit(result)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
