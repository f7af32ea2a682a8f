"""Figure: ticket intake over HTTP, >= 500 tickets/s over 20,000 tickets, p99 <= 100 ms,
no errors, no duplicates under retries (PostgreSQL, 16 concurrent clients).

For each server variant the database is rebuilt (Alembic, then set-based seeding: a
province, cities and counties on the default calendar, agents, customers with service
levels and contacts, a routing rule), a real server is started as a subprocess and an
asyncio load generator (plain HTTP/1.1 keep-alive connections) sends
`POST /api/v1/tickets` with an Idempotency-Key from 16 concurrent workers. About 5 % of the
keys are sent twice: half of them again after the first answer (sequential retry), half
twice at once (a retry racing the first try).
Afterwards the database must hold exactly one ticket per key, and every answer for a key
must name that ticket. A connection that breaks under a request (a keep-alive connection
closed by the server as it is reused) is sent once more with the same key and counted as
a transport retry, not an error.

Where the CPU goes is measured per phase: the server process and its workers, this
database's PostgreSQL backends (sampled every 0.2 s, since the server's pool opens and
closes connections under load), the load generator, and the machine as a whole; beside
them the database's counters (connections opened, commits, rollbacks).

Beside it, in the same run:

- an in-process pass (FastAPI TestClient) counts the SQL statements of one intake and the
  time spent inside the database driver, and EXPLAIN ANALYZEs its SELECTs;
- the database limit: the rows Kefu wrote per ticket (ticket, events, audit row, outbox
  rows, idempotency key) are written again by plain psycopg, one transaction per ticket,
  over 16 connections, so Kefu's rate can be read as a share of it;
- with --py-spy, a sampled profile of the server during an extra, unmeasured phase.

    .venv/bin/python -m benchmarks.ticket_intake
    .venv/bin/python -m benchmarks.ticket_intake --servers serve --tickets 2000   # quick

Prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url

from benchmarks._common import (
    REPO,
    check_resettable,
    emit,
    ensure_postgres_database,
    free_port,
    latency_summary,
    machine,
    median,
    progress,
    stamp,
)

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/kefu_bench_intake"
TARGET_RATE = 500.0  # tickets per second
TARGET_P99_MS = 100.0
ENDPOINT = "/api/v1/tickets"

# The organisation: ids are fixed so the seed SQL and the request plan agree.
N_CITIES = 11
COUNTIES_PER_CITY = 8
N_COUNTIES = N_CITIES * COUNTIES_PER_CITY
FIRST_CITY = 2
FIRST_COUNTY = FIRST_CITY + N_CITIES  # unit ids: 1 province, 2..12 cities, 13..100 counties
CITY_STAFF = 4
COUNTY_STAFF = 9  # the first is the county's supervisor; everyone is an agent
GATEWAY_STAFF_ID = 1  # the caller: a province-level integration (a call-centre gateway)
FIRST_CITY_STAFF = 2
FIRST_COUNTY_STAFF = FIRST_CITY_STAFF + N_CITIES * CITY_STAFF

# What the tickets look like (weights).
CATEGORIES = [
    ("fault_repair", 30),
    ("technical_support", 15),
    ("consultation", 15),
    ("order_delivery", 10),
    ("installation", 10),
    ("upgrade_notice", 5),
    ("complaint", 5),
    ("change_request", 5),
    ("other", 5),
]
ONSITE = {"installation", "fault_repair"}
PRIORITIES = [("urgent", 5), ("high", 20), ("normal", 60), ("low", 15)]
CHANNELS = [("phone", 40), ("portal", 20), ("email", 20), ("api", 20)]
SUBJECTS = [
    "专线中断",
    "网络时断时续",
    "设备告警无法消除",
    "宽带无法拨号",
    "VPN 配置咨询",
    "云主机性能下降",
    "账单金额有疑问",
    "申请提速",
    "新装宽带预约",
    "投诉装维人员迟到",
]
TAGS = ["宽带", "专线", "5G", "计费", "重要客户", "回访"]
PHRASES = [
    "客户来电反映",
    "自今日上午起",
    "业务办理后",
    "多次重启设备后问题依旧",
    "请尽快安排人员处理",
    "客户要求上门服务",
    "已初步排查本地线路",
    "影响公司正常办公",
]

SEED_SQL = [
    # The tree: a province, cities, counties; counties name the default calendar.
    """INSERT INTO units (id, parent_id, name, region_code, timezone, path, depth, sort_order,
                          calendar_id, is_active, created_at, updated_at)
       VALUES (1, NULL, '省公司', '330000', 'Asia/Shanghai', '/1/', 0, 0, NULL, true,
               :now, :now)""",
    f"""INSERT INTO units (id, parent_id, name, region_code, timezone, path, depth, sort_order,
                           calendar_id, is_active, created_at, updated_at)
        SELECT id, 1, '市分公司' || id, '33' || lpad((id - 1)::text, 2, '0') || '00',
               'Asia/Shanghai', '/1/' || id || '/', 1, id, NULL, true, :now, :now
        FROM generate_series({FIRST_CITY}, {FIRST_CITY + N_CITIES - 1}) AS id""",
    f"""INSERT INTO units (id, parent_id, name, region_code, timezone, path, depth, sort_order,
                           calendar_id, is_active, created_at, updated_at)
        SELECT id, p, '县支局' || id,
               '33' || lpad((p - 1)::text, 2, '0')
                    || lpad((1 + (id - {FIRST_COUNTY}) % {COUNTIES_PER_CITY})::text, 2, '0'),
               'Asia/Shanghai', '/1/' || p || '/' || id || '/', 2, id,
               (SELECT min(id) FROM calendars WHERE is_default), true, :now, :now
        FROM (SELECT id, {FIRST_CITY} + (id - {FIRST_COUNTY}) / {COUNTIES_PER_CITY} AS p
              FROM generate_series({FIRST_COUNTY}, {FIRST_COUNTY + N_COUNTIES - 1}) AS id) AS c""",
    # Departments: the province and cities have all four, counties lack a technical one
    # (so technical support is served by the city: a linked service).
    """INSERT INTO unit_functions (unit_id, function)
       SELECT u.id, f
       FROM units u CROSS JOIN unnest(ARRAY['service', 'business', 'marketing', 'technical']) AS f
       WHERE u.depth < 2 OR f <> 'technical'""",
    # Staff: the gateway, 4 agents per city, 9 per county (the first is also supervisor).
    """INSERT INTO staff (id, username, display_name, unit_id, locale, is_active, failed_logins,
                          created_at, updated_at)
       VALUES (1, 'gateway', '呼叫中心网关', 1, 'zh_CN', true, 0, :now, :now)""",
    f"""INSERT INTO staff (id, username, display_name, unit_id, locale, is_active, failed_logins,
                           created_at, updated_at)
        SELECT id, 'c' || lpad(id::text, 5, '0'), '市客服' || id,
               {FIRST_CITY} + (id - {FIRST_CITY_STAFF}) / {CITY_STAFF}, 'zh_CN', true, 0,
               :now, :now
        FROM generate_series({FIRST_CITY_STAFF}, {FIRST_COUNTY_STAFF - 1}) AS id""",
    f"""INSERT INTO staff (id, username, display_name, unit_id, locale, is_active, failed_logins,
                           created_at, updated_at)
        SELECT id, 'k' || lpad(id::text, 5, '0'), '县客服' || id,
               {FIRST_COUNTY} + (id - {FIRST_COUNTY_STAFF}) / {COUNTY_STAFF}, 'zh_CN', true, 0,
               :now, :now
        FROM generate_series({FIRST_COUNTY_STAFF},
                             {FIRST_COUNTY_STAFF + N_COUNTIES * COUNTY_STAFF - 1}) AS id""",
    "INSERT INTO staff_roles (staff_id, role) SELECT id, 'agent' FROM staff",
    f"""INSERT INTO staff_roles (staff_id, role)
        SELECT id, 'supervisor' FROM staff
        WHERE id >= {FIRST_COUNTY_STAFF} AND (id - {FIRST_COUNTY_STAFF}) % {COUNTY_STAFF} = 0""",
    # Customers in the counties, with service levels 5A 1 %, 4A 4 %, 3A 15 %, 2A 30 %,
    # 1A 50 %; 30 % have an account manager (an agent of their county).
    f"""INSERT INTO customers (id, name, path, depth, region_code, owning_unit_id,
                               account_manager_id, is_important, is_group, is_potential, status,
                               notes, tier, service_level, tier_pinned, revenue_12m,
                               created_at, updated_at)
        SELECT g.i, '客户' || g.i || '有限公司', '/' || g.i || '/', 0, u.region_code, u.id,
               CASE WHEN g.i % 10 < 3
                    THEN {FIRST_COUNTY_STAFF} + (u.id - {FIRST_COUNTY}) * {COUNTY_STAFF}
                         + 1 + g.i % {COUNTY_STAFF - 1} END,
               g.i % 100 = 0, false, false, 'active', '',
               CASE WHEN g.sl IN ('5A', '4A') THEN 'A' WHEN g.sl IN ('3A', '2A') THEN 'B'
                    ELSE 'C' END,
               g.sl, false, 0, :now, :now
        FROM (SELECT i, {FIRST_COUNTY} + (i * 37) % {N_COUNTIES} AS uid,
                     CASE WHEN i % 100 < 1 THEN '5A' WHEN i % 100 < 5 THEN '4A'
                          WHEN i % 100 < 20 THEN '3A' WHEN i % 100 < 50 THEN '2A'
                          ELSE '1A' END AS sl
              FROM generate_series(1, :customers) AS i) AS g
        JOIN units u ON u.id = g.uid""",
    """INSERT INTO contacts (id, customer_id, name, phone, preferred_channel, locale,
                             portal_access, is_group_admin, created_at, updated_at)
       SELECT i, i, '联系人' || i, '138' || lpad(i::text, 8, '0'), 'phone', 'zh_CN', false,
              false, :now, :now
       FROM generate_series(1, :customers) AS i""",
    # Two custom fields of every category, as a call-centre gateway sends them: its own
    # reference (the benchmark's key) and the caller's number.
    """INSERT INTO ticket_fields (key, category_code, label_zh, label_en, type, required, choices,
                                  position, is_active, created_at, updated_at)
       VALUES ('bench_key', NULL, '网关流水号', 'Gateway reference', 'text', false, '[]', 0,
               true, :now, :now),
              ('caller', NULL, '来电号码', 'Caller', 'text', false, '[]', 1, true, :now, :now)""",
    # Technical support goes to the nearest unit with a technical department.
    """INSERT INTO routing_rules (kind, category_code, function, position, is_active)
       VALUES ('category_function', 'technical_support', 'technical', 0, true)""",
]

JSON_COLUMNS = {
    "tickets": {"tags", "custom_fields"},
    "ticket_events": {"data"},
    "audit_log": {"changes"},
    "outbox": {"payload"},
    "idempotency_keys": {"body"},
}


# --- the database ---------------------------------------------------------------------------


def reset_database(url: str) -> None:
    """An empty database of `url` with Kefu's schema (alembic upgrade head)."""
    from kefu import schema
    from kefu.db import make_engine

    check_resettable(url)
    if make_url(url).get_backend_name() != "postgresql":
        raise SystemExit("ticket_intake measures PostgreSQL: give a postgresql+psycopg URL")
    ensure_postgres_database(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    schema.upgrade(url)


def seed(engine: Engine, customers: int) -> dict[str, Any]:
    from kefu.clock import now

    started = time.perf_counter()
    with engine.begin() as conn:
        for sql in SEED_SQL:
            conn.execute(text(sql), {"now": now(), "customers": customers})
        for table in ("units", "staff", "customers", "contacts"):
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    with engine.connect() as conn:
        counts = {
            t: int(conn.scalar(text(f"SELECT count(*) FROM {t}")) or 0)
            for t in ("units", "staff", "customers", "contacts", "routing_rules")
        }
        levels = dict(
            conn.execute(
                text("SELECT service_level, count(*) FROM customers GROUP BY 1 ORDER BY 1")
            ).all()
        )
        with_manager = conn.scalar(
            text("SELECT count(*) FROM customers WHERE account_manager_id IS NOT NULL")
        )
    return {
        "seconds": round(time.perf_counter() - started, 2),
        **counts,
        "service_levels": {str(k): int(v) for k, v in levels.items()},
        "customers_with_account_manager": int(with_manager or 0),
    }


def integration_token(url: str) -> str:
    """An integration token of the gateway (a province-level agent, not an admin)."""
    from kefu.auth import service as auth
    from kefu.db import make_engine, make_sessionmaker, unit_of_work
    from kefu.scope import SYSTEM
    from kefu.staff.models import Staff

    engine = make_engine(url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            staff = session.get(Staff, GATEWAY_STAFF_ID)
            assert staff is not None
            plain, _ = auth.issue_token(
                session, SYSTEM, staff, kind="integration", name="bench gateway"
            )
    finally:
        engine.dispose()
    return plain


# --- the request plan -----------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    key: str
    body: dict[str, Any]
    mode: str  # "once", "sequential" (retried after the answer), "concurrent" (twice at once)

    @property
    def payload(self) -> bytes:
        return json.dumps(self.body, ensure_ascii=False).encode()


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def plan_jobs(n: int, prefix: str, customers: int, retry_share: float, seed: int) -> list[Job]:
    """`n` tickets with distinct keys; `retry_share` of them are sent twice (half after the
    first answer, half at the same time as the first try)."""
    rng = random.Random(seed)
    retried = rng.sample(range(n), round(n * retry_share))
    modes = {i: ("sequential" if k % 2 == 0 else "concurrent") for k, i in enumerate(retried)}
    jobs = []
    for i in range(n):
        key = f"{prefix}-{i:06d}"
        customer = rng.randint(1, customers)
        category = _pick(rng, CATEGORIES)
        words = rng.sample(PHRASES, 4)
        description = (
            f"<p>{words[0]}，{words[1]}，{rng.choice(SUBJECTS)}。</p>"
            f"<p>{words[2]}；{words[3]}。联系电话 0571-8{rng.randint(1000000, 9999999)}，"
            f"工号 {rng.randint(1000, 9999)}。</p>"
        )
        body: dict[str, Any] = {
            "customer_id": customer,
            "contact_id": customer if rng.random() < 0.7 else None,  # contact id = customer id
            "category_code": category,
            "priority": _pick(rng, PRIORITIES),
            "subject": f"{rng.choice(SUBJECTS)}（客户 {customer}）",
            "description": description * 2,
            "channel": _pick(rng, CHANNELS),
            "site_region_code": "330102" if category in ONSITE and rng.random() < 0.5 else None,
            "tags": rng.sample(TAGS, rng.randint(0, 2)),
            "custom_fields": {"bench_key": key, "caller": f"0571{rng.randint(10**7, 10**8 - 1)}"},
        }
        jobs.append(Job(key, body, modes.get(i, "once")))
    return jobs


# --- the load generator ---------------------------------------------------------------------


@dataclass
class Sent:
    key: str
    mode: str
    attempt: int  # 0: the first try, 1: the retry
    status: int
    ticket_id: int | None
    replayed: str | None
    start_ns: int  # perf_counter_ns (CLOCK_MONOTONIC: comparable across processes)
    ns: int
    error: str | None = None
    transport_retries: int = 0  # sent again with the same key after a broken connection


class _Connection:
    """One keep-alive HTTP/1.1 connection, spoken directly: the load generator shares the
    server's two cores, so it must cost little (an httpx client took 1.2–2.6 ms of CPU per
    request; this takes a tenth of that). Answers carry Content-Length (uvicorn's do)."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.auth = f"Authorization: Bearer {token}\r\n".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        import socket

        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def post(self, path: str, body: bytes, key: str) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            await self._open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(
            b"".join(
                (
                    f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n".encode(),
                    self.auth,
                    b"Content-Type: application/json\r\n",
                    f"Idempotency-Key: {key}\r\nContent-Length: {len(body)}\r\n\r\n".encode(),
                    body,
                )
            )
        )
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name:
                    headers[name.strip().lower()] = value.strip()
            data = await self.reader.readexactly(int(headers.get("content-length", "0")))
        except Exception:
            self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, data


async def _send(conn: _Connection, job: Job, attempt: int) -> Sent:
    """POST one ticket. A connection that breaks (a keep-alive connection the server closed
    just as it was reused) is retried once with the same Idempotency-Key, as a client
    would; the retry is counted."""
    t0 = time.perf_counter_ns()
    retries = 0
    while True:
        try:
            status, headers, data = await conn.post(ENDPOINT, job.payload, job.key)
            break
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            if retries:
                return Sent(job.key, job.mode, attempt, 0, None, None, t0, 0, repr(exc)[:300], 1)
            retries = 1
    ns = time.perf_counter_ns() - t0
    if status == 201:
        return Sent(
            job.key,
            job.mode,
            attempt,
            201,
            int(json.loads(data)["id"]),
            headers.get("idempotent-replayed"),
            t0,
            ns,
            None,
            retries,
        )
    text_ = data.decode("utf-8", "replace")[:300]
    return Sent(job.key, job.mode, attempt, status, None, None, t0, ns, text_, retries)


async def _drive(base_url: str, token: str, jobs: list[Job], concurrency: int) -> list[Sent]:
    from urllib.parse import urlsplit

    where = urlsplit(base_url)
    host, port = where.hostname or "127.0.0.1", where.port or 80
    out: list[Sent] = []
    shared = iter(jobs)  # each worker takes the next job: every job is sent once
    connections: list[_Connection] = []

    async def worker() -> None:
        # Two connections: a retry racing its first try needs the second.
        conn, extra = _Connection(host, port, token), _Connection(host, port, token)
        connections.extend((conn, extra))
        for job in shared:
            if job.mode == "concurrent":
                out.extend(await asyncio.gather(_send(conn, job, 0), _send(extra, job, 1)))
                continue
            out.append(await _send(conn, job, 0))
            if job.mode == "sequential":
                out.append(await _send(conn, job, 1))

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        for conn in connections:
            conn.close()
    return out


def _client_process(
    base_url: str, token: str, jobs: list[Job], concurrency: int
) -> tuple[list[Sent], float, float, float]:
    """Run one load generator: (answers, start, end (perf_counter), CPU seconds)."""
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    out = asyncio.run(_drive(base_url, token, jobs, concurrency))
    return out, t0, time.perf_counter(), time.process_time() - cpu0


def send_all(
    base_url: str, token: str, jobs: list[Job], concurrency: int, processes: int
) -> tuple[list[Sent], float, float]:
    """All jobs from `concurrency` workers (split over `processes` client processes).

    Returns (answers, wall seconds, client CPU seconds)."""
    if processes <= 1:
        out, t0, t1, cpu = _client_process(base_url, token, jobs, concurrency)
        return out, t1 - t0, cpu
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    shares = [jobs[k::processes] for k in range(processes)]
    workers = [concurrency // processes + (k < concurrency % processes) for k in range(processes)]
    with ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        futures = [
            pool.submit(_client_process, base_url, token, share, w)
            for share, w in zip(shares, workers, strict=True)
        ]
        parts = [f.result() for f in futures]
    out = [s for p in parts for s in p[0]]
    return out, max(p[2] for p in parts) - min(p[1] for p in parts), sum(p[3] for p in parts)


# --- processes and CPU ----------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK if fields else 0.0


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields:
                children[int(fields[1])].append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])
    return total - idle, total


def pg_backends(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return [
            int(p)
            for p in conn.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        ]


def pg_counters(engine: Engine) -> dict[str, int]:
    """Counters of this database: sessions opened (connections), commits, rollbacks."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT sessions, xact_commit, xact_rollback FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
        ).one()
    return {"sessions": int(row[0]), "commits": int(row[1]), "rollbacks": int(row[2])}


class BackendWatch:
    """CPU of this database's PostgreSQL backends over a phase.

    The server's connection pool opens and closes connections under load, so backends
    come and go: a thread lists them every 0.2 s and keeps the last CPU time seen of each
    (a backend that starts during the phase counts from zero, its start-up included)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.start: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for pid in pg_backends(self.engine):
            cpu = proc_cpu(pid)
            if cpu:
                self.last[pid] = cpu

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def __enter__(self) -> BackendWatch:
        self._sample()
        self.start = dict(self.last)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sample()
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        return sum(v - self.start.get(p, 0.0) for p, v in self.last.items())

    @property
    def backends(self) -> int:
        return len(self.last)


@dataclass
class CpuSnapshot:
    server: dict[int, float]
    machine: tuple[int, int]


def cpu_snapshot(server_pid: int) -> CpuSnapshot:
    return CpuSnapshot({p: proc_cpu(p) for p in descendants(server_pid)}, machine_jiffies())


def cpu_between(a: CpuSnapshot, b: CpuSnapshot, backends: BackendWatch) -> dict[str, float]:
    busy = b.machine[0] - a.machine[0]
    total = b.machine[1] - a.machine[1]
    return {
        "server_s": round(sum(v - a.server.get(p, 0.0) for p, v in b.server.items()), 2),
        "postgres_backends_s": round(backends.seconds, 2),
        "postgres_backends_seen": backends.backends,
        "machine_busy_share": round(busy / total, 3) if total else 0.0,
        "machine_busy_s": round(busy / CLK_TCK, 2),
    }


# --- the server -----------------------------------------------------------------------------


@dataclass
class Server:
    spec: str
    command: list[str]
    proc: subprocess.Popen[bytes]
    base_url: str
    log: Path


def start_server(spec: str, url: str, workdir: Path) -> Server:
    """`serve`: `kefu serve --no-worker`; `serve:N`: the same with `--workers N`; `uvicorn:N`:
    uvicorn with N workers and Kefu's own app factory (`--factory kefu.app:create_app`,
    settings from KEFU_* variables)."""
    port = free_port()
    env = {
        **os.environ,
        "KEFU_DATABASE_URL": url,
        "KEFU_SECRET_KEY": "bench",
        "KEFU_DATA_DIR": str(workdir / "var"),
        "KEFU_EMBEDDED_WORKER": "false",
    }
    host = ["--host", "127.0.0.1", "--port", str(port)]
    if spec == "serve" or spec.startswith("serve:"):
        kefu = Path(sys.executable).parent / "kefu"
        command = [str(kefu), "serve", "--no-worker", *host]
        if ":" in spec:
            command += ["--workers", spec.split(":", 1)[1]]
    elif spec.startswith("uvicorn:"):
        workers = int(spec.split(":", 1)[1])
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "kefu.app:create_app",
            *host,
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
    else:
        raise SystemExit(f"unknown server variant {spec!r} (serve, serve:N or uvicorn:N)")
    log = workdir / f"server-{spec.replace(':', '-')}.log"  # kept for a look afterwards
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            if httpx.get(base_url + "/healthz", timeout=1.0).status_code == 200:
                return Server(spec, command, proc, base_url, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    stop_server(Server(spec, command, proc, base_url, log))
    raise SystemExit(f"the server did not answer /healthz within 60 s: {log.read_text()[-2000:]}")


def stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGINT)
        try:
            server.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.proc.pid, signal.SIGKILL)  # the group this script started
            server.proc.wait(10)


# --- py-spy ---------------------------------------------------------------------------------

# Inclusive shares of these frames (function name, file suffix) in the server's samples.
PROFILE_FRAMES = [
    ("create_ticket", "api/v1/tickets.py"),
    ("idempotent_create", "api/v1/common.py"),
    ("current_viewer", "api/v1/deps.py"),
    ("open_ticket", "tickets/service.py"),
    ("route", "tickets/routing.py"),
    ("least_loaded_agent", "tickets/routing.py"),
    ("unit_with_function", "tickets/routing.py"),
    ("_level_version", "tickets/service.py"),
    ("targets_for", "service_levels/service.py"),
    ("due", "sla/service.py"),
    ("warn_instant", "tickets/escalation.py"),
    ("calendar_row_for_unit", "sla/service.py"),
    ("due_at", "sla/policy.py"),
    ("clean_html", "tickets/service.py"),
    ("notify", "notifications/service.py"),
    ("find", "idempotency/service.py"),
    ("remember", "idempotency/service.py"),
    ("flush", "orm/session.py"),
    ("commit", "orm/session.py"),
    ("model_validate", "pydantic/main.py"),
    ("jsonable_encoder", "fastapi/encoders.py"),
    ("get_db", "api/v1/deps.py"),
    ("_execute_context", "engine/base.py"),
    ("execute", "psycopg/cursor.py"),
]

# Layers of a sample, by the innermost frame that belongs to one (py-spy names files by
# their module path: "sqlalchemy/orm/session.py", "kefu/sla/service.py", "json/encoder.py").
LAYERS = [
    ("psycopg", "driver (psycopg)"),
    ("sqlalchemy", "sqlalchemy"),
    ("pydantic", "pydantic"),
    ("pydantic_core", "pydantic"),
    ("fastapi", "fastapi/starlette/anyio"),
    ("starlette", "fastapi/starlette/anyio"),
    ("anyio", "fastapi/starlette/anyio"),
    ("uvicorn", "uvicorn/h11/asyncio"),
    ("h11", "uvicorn/h11/asyncio"),
    ("httptools", "uvicorn/h11/asyncio"),
    ("asyncio", "uvicorn/h11/asyncio"),
    ("kefu", "kefu"),
    ("nh3", "nh3"),
    ("json", "json"),
]


def _frame_parts(frame: str) -> tuple[str, str]:
    """'Class.name (path/file.py:12)' -> ('name', 'path/file.py')."""
    name, _, where = frame.partition(" (")
    return name.strip().rsplit(".", 1)[-1], where.rsplit(":", 1)[0].rstrip(")")


def summarise_pyspy(raw: Path, ms_per_ticket: float | None) -> dict[str, Any]:
    """Self time by layer (the innermost frame that belongs to a known package; kefu by
    module), and inclusive time of PROFILE_FRAMES; in % of samples and, given the server's
    CPU per ticket, in ms per ticket."""
    total = 0
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    layers = dict(LAYERS)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame_parts(f) for f in stack.split(";")]
        layer = "other"
        for _, where in reversed(frames):
            top = where.split("/", 1)[0].removesuffix(".py")
            if top in layers:
                layer = layers[top]
                if top == "kefu":
                    layer = "kefu/" + where.split("/")[1].removesuffix(".py")
                break
        own[layer] += n
        seen = set()
        for name, where in frames:
            for fn, suffix in PROFILE_FRAMES:
                if name == fn and where.endswith(suffix) and (fn, suffix) not in seen:
                    seen.add((fn, suffix))
                    inclusive[f"{suffix}:{fn}"] += n

    def shares(counter: Counter[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in counter.most_common():
            pct = 100 * v / total
            out[k] = (
                {"pct": round(pct, 1), "ms_per_ticket": round(pct * ms_per_ticket / 100, 2)}
                if ms_per_ticket
                else round(pct, 1)
            )
        return out

    if not total:
        return {"samples": 0}
    return {
        "samples": total,
        "self_by_layer": shares(own),
        "inclusive": shares(inclusive),
    }


# --- measuring one server variant ------------------------------------------------------------


def slice_rates(done_ns: list[int], start_ns: int, slices: int = 10) -> list[float]:
    """Tickets per second in consecutive slices of the created tickets (completion order)."""
    done = sorted(done_ns)
    size = max(1, len(done) // slices)
    rates, prev = [], start_ns
    for k in range(0, len(done) - size + 1, size):
        end = done[k + size - 1]
        rates.append(round(size / max(1e-9, (end - prev) / 1e9), 1))
        prev = end
    return rates


def summarise_answers(sent: list[Sent]) -> dict[str, Any]:
    ok = [s for s in sent if s.status == 201]
    errors = [s for s in sent if s.status != 201]
    retried = [s for s in sent if s.mode != "once"]
    return {
        "requests": len(sent),
        "answered_201": len(ok),
        "errors": len(errors),
        "error_samples": sorted({f"{s.status} {s.error}" for s in errors})[:5],
        "transport_errors_retried": sum(s.transport_retries for s in sent),
        "retry_requests": sum(1 for s in retried if s.attempt == 1),
        "sequential_retries": sum(1 for s in retried if s.attempt == 1 and s.mode == "sequential"),
        "concurrent_retries": sum(1 for s in retried if s.attempt == 1 and s.mode == "concurrent"),
    }


def verify(engine: Engine, sent: list[Sent]) -> dict[str, Any]:
    """One ticket per key, and every answer for a key names that ticket."""
    keys = {s.key for s in sent}
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT custom_fields->>'bench_key', id FROM tickets "
                "WHERE custom_fields->>'bench_key' IS NOT NULL"
            )
        ).all()
        total = int(conn.scalar(text("SELECT count(*) FROM tickets")) or 0)
        idem_rows = int(conn.scalar(text("SELECT count(*) FROM idempotency_keys")) or 0)
        per_ticket = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM ticket_events), "
                "(SELECT count(*) FROM audit_log WHERE action = 'ticket.create'), "
                "(SELECT count(*) FROM outbox), "
                "(SELECT count(*) FROM tickets WHERE handling_unit_id <> owning_unit_id), "
                "(SELECT count(*) FROM tickets WHERE assignee_id IS NULL), "
                "(SELECT count(*) FROM tickets WHERE resolution_due IS NULL)"
            )
        ).one()
    in_db: dict[str, list[int]] = defaultdict(list)
    for key, tid in rows:
        in_db[key].append(int(tid))
    answers: dict[str, set[int]] = defaultdict(set)
    created: Counter[str] = Counter()
    for s in sent:
        if s.status == 201 and s.ticket_id is not None:
            answers[s.key].add(s.ticket_id)
            created[s.key] += s.replayed == "false"
    duplicates = sum(len(v) - 1 for v in in_db.values() if len(v) > 1)
    missing = [k for k in keys if k not in in_db]
    wrong_answer = [k for k, ids in answers.items() if ids != set(in_db.get(k, []))]
    not_once = [k for k in answers if created[k] != 1]
    retried_keys = {s.key for s in sent if s.mode != "once"}
    replay_ok = sum(1 for k in retried_keys if len(answers[k]) == 1 and k not in wrong_answer)
    n = max(1, total)
    return {
        "ok": duplicates == 0
        and not missing
        and not wrong_answer
        and not not_once
        and total == len(keys)
        and idem_rows == len(keys),
        "distinct_keys": len(keys),
        "tickets": total,
        "idempotency_rows": idem_rows,
        "duplicates": duplicates,
        "keys_without_ticket": len(missing),
        "keys_answered_with_another_ticket": len(wrong_answer),
        "keys_not_created_exactly_once": len(not_once),
        "retried_keys": len(retried_keys),
        "retried_keys_answered_consistently": replay_ok,
        "rows_per_ticket": {
            "ticket_events": round(per_ticket[0] / n, 3),
            "audit_log": round(per_ticket[1] / n, 3),
            "outbox": round(per_ticket[2] / n, 3),
        },
        "linked_service_share": round(per_ticket[3] / n, 3),
        "unassigned_share": round(per_ticket[4] / n, 3),
        "without_sla_share": round(per_ticket[5] / n, 3),
    }


def _pyspy_record(pyspy: str, pid: int, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            pyspy,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--rate",
            "100",
            "--format",
            "raw",
            "--output",
            str(out),
            "--gil",  # only the thread holding the GIL: where Python spends CPU
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


WRITTEN_TABLES = (
    "tickets",
    "ticket_events",
    "ticket_field_values",
    "audit_log",
    "outbox",
    "idempotency_keys",
    "complaints",
)


class Autovacuum:
    """What autovacuum does for a production database, when this server has it off (the
    shared server here runs with `autovacuum = off`): VACUUM (ANALYZE) of the tables the
    intake writes every `every` seconds, on a connection of this database (so its CPU is
    counted with PostgreSQL's). Without it the planner keeps the statistics of an empty
    table and index-only scans visit the heap: routing's load query grew with every ticket."""

    def __init__(self, url: str, every: float) -> None:
        self.url, self.every = url, every
        self.runs = 0
        self.enabled_on_server = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Autovacuum:
        import psycopg

        conninfo = make_url(self.url).set(drivername="postgresql").render_as_string(False)
        self._conn = psycopg.connect(conninfo, autocommit=True)
        setting = self._conn.execute("SHOW autovacuum").fetchone()
        self.enabled_on_server = bool(setting and setting[0] == "on")
        if not self.enabled_on_server and self.every > 0:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._conn.execute(f"VACUUM (ANALYZE) {', '.join(WRITTEN_TABLES)}")
            self.runs += 1

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._conn.close()

    def report(self) -> dict[str, Any]:
        if self.enabled_on_server:
            return {"server": "on"}
        return {
            "server": "off",
            "emulated": f"VACUUM (ANALYZE) of the written tables every {self.every:g} s",
            "runs": self.runs,
        }


def measure_variant(spec: str, args: argparse.Namespace) -> dict[str, Any]:
    from kefu.db import make_engine

    url = args.database_url
    progress(f"[{spec}] rebuilding {make_url(url).render_as_string(hide_password=True)}")
    reset_database(url)
    engine = make_engine(url)
    seed_info = seed(engine, args.customers)
    progress(f"[{spec}] seeded: {seed_info}")
    token = integration_token(url)
    server = start_server(spec, url, args.profile_dir)
    progress(f"[{spec}] server up: {' '.join(server.command)}")
    tag = spec.replace(":", "")
    try:
        warm = plan_jobs(args.warmup, f"{tag}-warm", args.customers, 0.0, 1)
        send_all(server.base_url, token, warm, args.concurrency, 1)
        jobs = plan_jobs(args.tickets, f"{tag}-run", args.customers, args.retry_share, 2)
        progress(
            f"[{spec}] sending {len(jobs)} tickets from {args.concurrency} workers "
            f"({args.client_processes} client process(es))"
        )
        load_before = os.getloadavg()[0]
        counters_before = pg_counters(engine)
        with BackendWatch(engine) as backends, Autovacuum(url, args.vacuum_every) as vacuum:
            before = cpu_snapshot(server.proc.pid)
            t0 = time.perf_counter_ns()
            sent, wall, client_cpu = send_all(
                server.base_url, token, jobs, args.concurrency, args.client_processes
            )
            after = cpu_snapshot(server.proc.pid)
        counters = {k: v - counters_before[k] for k, v in pg_counters(engine).items()}
        load_after = os.getloadavg()[0]
        profile: dict[str, Any] | None = None
        if args.py_spy and args.profile_tickets:
            raw = args.profile_dir / f"pyspy-{tag}.txt"
            progress(f"[{spec}] profiling {args.profile_tickets} more tickets with py-spy")
            spy = _pyspy_record(args.py_spy, server.proc.pid, raw)
            time.sleep(1.0)
            extra = plan_jobs(args.profile_tickets, f"{tag}-prof", args.customers, 0.0, 3)
            with BackendWatch(engine) as prof_backends:
                prof_before = cpu_snapshot(server.proc.pid)
                _, prof_wall, _ = send_all(server.base_url, token, extra, args.concurrency, 1)
                prof_after = cpu_snapshot(server.proc.pid)
            prof_cpu = cpu_between(prof_before, prof_after, prof_backends)
            spy.send_signal(signal.SIGINT)
            try:
                _, spy_err = spy.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
                _, spy_err = spy.communicate()
            if raw.exists():
                ms = 1000 * prof_cpu["server_s"] / len(extra)
                profile = {
                    "tickets": len(extra),
                    "raw_file": str(raw),
                    "tickets_per_s_under_py_spy": round(len(extra) / prof_wall, 1),
                    "server_cpu_ms_per_ticket": round(ms, 2),
                    **summarise_pyspy(raw, ms),
                }
            else:
                profile = {"error": spy_err.decode(errors="replace")[-500:]}
            sent_extra = extra
        else:
            sent_extra = []
    finally:
        stop_server(server)
    first_done = [s.start_ns + s.ns for s in sent if s.status == 201 and s.replayed == "false"]
    created = len(first_done)
    check = verify(
        engine,
        sent
        + [
            Sent(j.key, "once", 0, 0, None, None, 0, 0)
            for j in warm + sent_extra  # their keys count as tickets too
        ],
    )
    engine.dispose()
    summary = latency_summary([s.ns for s in sent if s.status == 201] or [0])
    firsts = latency_summary([s.ns for s in sent if s.status == 201 and s.attempt == 0] or [0])
    cpu = cpu_between(before, after, backends)
    rate = created / wall
    answers = summarise_answers(sent)
    result: dict[str, Any] = {
        "server": spec,
        "command": " ".join(server.command),
        "tickets_created": created,
        "seconds": round(wall, 2),
        "tickets_per_s": round(rate, 1),
        "requests_per_s": round(len(sent) / wall, 1),
        "slice_tickets_per_s": slice_rates(first_done, t0),
        **summary,
        "first_try_latency": firsts,
        **answers,
        "duplicates": check["duplicates"],
        "idempotency_check": check,
        "cpu": {
            **cpu,
            "server_ms_per_ticket": round(1000 * cpu["server_s"] / max(1, created), 2),
            "postgres_ms_per_ticket": round(1000 * cpu["postgres_backends_s"] / max(1, created), 2),
            "client_s": round(client_cpu, 2),
            "client_ms_per_request": round(1000 * client_cpu / max(1, len(sent)), 3),
            "client_share_of_one_core": round(client_cpu / wall, 3),
        },
        "postgres_counters": {
            **counters,
            # The server's pool keeps 5 connections and opens up to 10 more under load,
            # closing each extra one when it is returned: new sessions show that churn.
            "new_connections_per_100_tickets": round(100 * counters["sessions"] / created, 2),
        },
        "load_average_1m": [round(load_before, 2), round(load_after, 2)],
        "autovacuum": vacuum.report(),
        "seed": seed_info,
        "pass": rate >= TARGET_RATE
        and summary["p99_ms"] <= TARGET_P99_MS
        and answers["errors"] == 0
        and check["ok"],
    }
    if profile is not None:
        result["py_spy"] = profile
    progress(
        f"[{spec}] {result['tickets_per_s']} tickets/s, p99 {result['p99_ms']} ms, "
        f"errors {answers['errors']}, duplicates {check['duplicates']}, cpu {result['cpu']}"
    )
    return result


# --- in process: statements per ticket -------------------------------------------------------


def _verb_and_table(statement: str) -> tuple[str, str]:
    words = statement.split()
    verb = words[0].upper() if words else "?"
    table = "?"
    upper = [w.upper() for w in words]
    for marker in ("INTO", "FROM", "UPDATE"):
        if marker in upper:
            i = upper.index(marker)
            if marker == "UPDATE" and verb == "UPDATE":
                table = words[1]
            elif i + 1 < len(words):
                table = words[i + 1]
            break
    return verb, table.strip('"(')


def in_process_pass(url: str, customers: int, n: int, explain: bool) -> dict[str, Any]:
    """Statements per intake, time inside the driver, and EXPLAIN ANALYZE of the SELECTs
    of one intake, through the real ASGI app in-process (no socket)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from kefu.app import create_app
    from kefu.config import Settings, use_settings
    from kefu.db import make_engine, make_sessionmaker

    settings = Settings(
        database_url=url,
        secret_key="bench",
        embedded_worker=False,
        data_dir=Path(tempfile.gettempdir()) / "kefu-bench-intake",
    )
    use_settings(settings)
    engine = make_engine(url)
    app = create_app(settings, make_sessionmaker(engine))
    token = integration_token(url)
    headers = {"Authorization": f"Bearer {token}"}
    jobs = plan_jobs(n + 20, "inproc", customers, 0.0, 4)

    current: list[tuple[str, Any, int]] = []
    counters = Counter[str]()

    def before(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: Any) -> None:
        conn.info["bench_t0"] = time.perf_counter_ns()

    def after(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: Any) -> None:
        current.append((statement, params, time.perf_counter_ns() - conn.info.pop("bench_t0", 0)))

    def on_commit(conn: Any) -> None:
        counters["commit"] += 1

    def on_checkout(*_: Any) -> None:
        counters["checkout"] += 1

    per_request: list[list[tuple[str, Any, int]]] = []
    totals: list[int] = []
    with TestClient(app) as client:
        for job in jobs[:20]:  # warm-up
            client.post(ENDPOINT, json=job.body, headers={**headers, "Idempotency-Key": job.key})
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        event.listen(engine, "commit", on_commit)
        event.listen(engine.pool, "checkout", on_checkout)
        try:
            for job in jobs[20:]:
                current.clear()
                t0 = time.perf_counter_ns()
                r = client.post(
                    ENDPOINT, json=job.body, headers={**headers, "Idempotency-Key": job.key}
                )
                totals.append(time.perf_counter_ns() - t0)
                if r.status_code != 201:
                    raise SystemExit(f"in-process intake failed: {r.status_code} {r.text[:300]}")
                per_request.append(list(current))
            # A replay (the retry path) for comparison.
            current.clear()
            job = jobs[20]
            client.post(ENDPOINT, json=job.body, headers={**headers, "Idempotency-Key": job.key})
            replay = list(current)
        finally:
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "after_cursor_execute", after)
            event.remove(engine, "commit", on_commit)
            event.remove(engine.pool, "checkout", on_checkout)

    counts = [len(r) for r in per_request]
    typical_n = int(median(counts))
    typical = next(r for r in per_request if len(r) == typical_n)
    by_verb: Counter[str] = Counter()
    by_table: Counter[str] = Counter()
    for statement, _, _ in typical:
        verb, table = _verb_and_table(statement)
        by_verb[verb] += 1
        by_table[f"{verb} {table}"] += 1
    repeated = Counter(" ".join(s.split())[:160] for s, _, _ in typical)
    out: dict[str, Any] = {
        "tickets": len(per_request),
        "statements_per_ticket": {
            "median": typical_n,
            "min": min(counts),
            "max": max(counts),
        },
        "round_trips_per_ticket_note": (
            "statements + BEGIN (psycopg opens the transaction with its own round trip) "
            "+ COMMIT + the pool's pre-ping on checkout"
        ),
        "commits_per_ticket": round(counters["commit"] / len(per_request), 2),
        "pool_checkouts_per_ticket": round(counters["checkout"] / len(per_request), 2),
        "by_verb": dict(by_verb.most_common()),
        "by_table": dict(by_table.most_common()),
        "repeated_statements": {s: c for s, c in repeated.most_common() if c > 1},
        "driver_ms_per_ticket_median": round(
            median([sum(ns for _, _, ns in r) for r in per_request]) / 1e6, 3
        ),
        "request_ms_median": round(median(totals) / 1e6, 3),
        "statements": [" ".join(s.split())[:200] for s, _, _ in typical],
        "replay_statements": [" ".join(s.split())[:200] for s, _, _ in replay],
    }
    if explain:
        plans = []
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            for statement, params, _ in typical:
                if not statement.lstrip().upper().startswith("SELECT"):
                    continue
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
                lines = [row[0] for row in cur.fetchall()]
                ms = next(
                    (float(x.split(":")[1].split()[0]) for x in lines if "Execution Time" in x),
                    0.0,
                )
                plans.append(
                    {"statement": " ".join(statement.split())[:200], "exec_ms": ms, "plan": lines}
                )
            raw.rollback()
        finally:
            raw.close()
        plans.sort(key=lambda p: -p["exec_ms"])
        out["explain_select_exec_ms_total"] = round(sum(p["exec_ms"] for p in plans), 3)
        out["explain_slowest"] = plans[:3]
        out["explain_exec_ms"] = [[p["exec_ms"], p["statement"][:120]] for p in plans]
    engine.dispose()
    use_settings(None)
    return out


# --- the database's own limit ---------------------------------------------------------------


def _load_rows(conninfo: str, n: int) -> list[dict[str, Any]]:
    """The rows Kefu wrote for its first `n` tickets, grouped per ticket."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(conninfo, row_factory=dict_row) as conn:
        tickets = conn.execute(
            "SELECT * FROM tickets WHERE custom_fields->>'bench_key' LIKE '%%-run-%%' "
            "ORDER BY id LIMIT %s",
            (n,),
        ).fetchall()
        ids = [t["id"] for t in tickets]
        low, high = min(ids), max(ids)
        events = conn.execute(
            "SELECT * FROM ticket_events WHERE ticket_id BETWEEN %s AND %s ORDER BY id",
            (low, high),
        ).fetchall()
        audit = conn.execute(
            "SELECT * FROM audit_log WHERE action = 'ticket.create' ORDER BY id"
        ).fetchall()
        outbox = conn.execute("SELECT * FROM outbox ORDER BY id").fetchall()
        keys = conn.execute("SELECT * FROM idempotency_keys ORDER BY id").fetchall()
        values = conn.execute(
            "SELECT * FROM ticket_field_values WHERE ticket_id BETWEEN %s AND %s "
            "ORDER BY ticket_id, field_id",
            (low, high),
        ).fetchall()
    per: dict[int, dict[str, Any]] = {
        t["id"]: {
            "tickets": [t],
            "ticket_events": [],
            "ticket_field_values": [],
            "audit_log": [],
            "outbox": [],
        }
        for t in tickets
    }
    for v in values:
        if v["ticket_id"] in per:
            per[v["ticket_id"]]["ticket_field_values"].append(v)
    for e in events:
        if e["ticket_id"] in per:
            per[e["ticket_id"]]["ticket_events"].append(e)
    for a in audit:
        if int(a["object_id"]) in per:
            per[int(a["object_id"])]["audit_log"].append(a)
    for o in outbox:
        tid = int(o["dedupe_key"].split(":")[1])
        if tid in per:
            per[tid]["outbox"].append(o)
    for k in keys:
        tid = int((k["location"] or "/0").rsplit("/", 1)[1])
        if tid in per:
            per[tid]["idempotency_keys"] = [k]
    return [p for p in per.values() if "idempotency_keys" in p]


def db_limit(url: str, n: int, concurrency: int) -> dict[str, Any]:
    """Kefu's rows per ticket, written again by plain psycopg: one transaction per ticket,
    one INSERT per table (multi-row VALUES where a ticket has several), over `concurrency`
    connections. The limit of the database on this machine, with a thin client."""
    import psycopg
    from psycopg.types.json import Json

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    groups = _load_rows(conninfo, n)
    if not groups:
        raise SystemExit("no Kefu tickets to copy for the database limit")

    sql_cache: dict[tuple[str, int], tuple[str, list[str]]] = {}

    def insert_sql(table: str, row: dict[str, Any], rows: int) -> tuple[str, list[str]]:
        cached = sql_cache.get((table, rows))
        if cached is None:
            cols = [c for c in row if c != "id"]
            one = "(" + ", ".join(["%s"] * len(cols)) + ")"
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES " + ", ".join([one] * rows)
            if table == "tickets":
                sql += " RETURNING id"
            cached = sql_cache[(table, rows)] = (sql, cols)
        return cached

    def values(table: str, row: dict[str, Any], cols: list[str]) -> list[Any]:
        json_cols = JSON_COLUMNS.get(table, set())
        return [Json(row[c]) if c in json_cols else row[c] for c in cols]

    def write(cur: Any, group: dict[str, Any], serial: int) -> None:
        old = group["tickets"][0]["id"]
        sql, cols = insert_sql("tickets", group["tickets"][0], 1)
        cur.execute(sql, values("tickets", group["tickets"][0], cols))
        new = cur.fetchone()[0]
        for table in (
            "ticket_events",
            "ticket_field_values",
            "audit_log",
            "outbox",
            "idempotency_keys",
        ):
            rows = [dict(r) for r in group.get(table, [])]
            if not rows:
                continue
            for r in rows:
                if table in ("ticket_events", "ticket_field_values"):
                    r["ticket_id"] = new
                elif table == "audit_log":
                    r["object_id"] = str(new)
                elif table == "outbox":
                    r["dedupe_key"] = r["dedupe_key"].replace(f":{old}", f":{new}", 1)
                    r["payload"] = {**r["payload"], "ticket_id": new}
                else:
                    r["key"] = f"{r['key']}.db{serial}"
                    r["location"] = (r["location"] or "").replace(f"/{old}", f"/{new}")
            sql, cols = insert_sql(table, rows[0], len(rows))
            cur.execute(sql, [v for r in rows for v in values(table, r, cols)])

    todo = list(range(len(groups)))
    lock = threading.Lock()
    latencies: list[int] = []
    errors: list[str] = []
    backend_pids: list[int] = []

    def work(conn: Any) -> None:
        cur = conn.cursor()
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            t0 = time.perf_counter_ns()
            try:
                write(cur, groups[i], i)
                conn.commit()
            except psycopg.Error as exc:
                conn.rollback()
                with lock:
                    errors.append(repr(exc)[:200])
                continue
            ns = time.perf_counter_ns() - t0
            with lock:
                latencies.append(ns)

    def worker() -> None:
        with psycopg.connect(conninfo) as conn:
            with lock:
                backend_pids.append(conn.info.backend_pid)
            started.wait()
            try:
                work(conn)
            finally:
                finished.wait()  # all done: the clock stops
                release.wait()  # the backend stays until its CPU time is read

    started = threading.Barrier(concurrency + 1)
    finished = threading.Barrier(concurrency + 1)
    release = threading.Event()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    while len(backend_pids) < concurrency:
        time.sleep(0.01)
    pg_before = {p: proc_cpu(p) for p in backend_pids}
    jiffies = machine_jiffies()
    cpu0 = time.process_time()
    started.wait()
    t0 = time.perf_counter()
    finished.wait()
    wall = time.perf_counter() - t0
    client_cpu = time.process_time() - cpu0
    busy, total = (a - b for a, b in zip(machine_jiffies(), jiffies, strict=True))
    pg_cpu = sum(proc_cpu(p) - v for p, v in pg_before.items())
    release.set()
    for t in threads:
        t.join()
    done = len(latencies)
    rows_per_ticket = {
        t: round(sum(len(g.get(t, [])) for g in groups) / len(groups), 3)
        for t in WRITTEN_TABLES
        if t != "complaints"  # the limit writes no complaint rows
    }
    return {
        "tickets": done,
        "connections": concurrency,
        "seconds": round(wall, 2),
        "tickets_per_s": round(done / wall, 1),
        **latency_summary(latencies or [0]),
        "errors": len(errors),
        "error_samples": errors[:3],
        "rows_per_ticket": rows_per_ticket,
        "round_trips_per_ticket": 2 + sum(1 for v in rows_per_ticket.values() if v),
        "round_trips_note": "BEGIN, one INSERT per table (multi-row VALUES), COMMIT",
        "cpu": {
            "client_s": round(client_cpu, 2),
            "client_share_of_one_core": round(client_cpu / wall, 3),
            "postgres_backends_s": round(pg_cpu, 2),
            "postgres_ms_per_ticket": round(1000 * pg_cpu / max(1, done), 3),
            "machine_busy_share": round(busy / total, 3) if total else 0.0,
        },
    }


# --- main -----------------------------------------------------------------------------------


def _pyspy_default() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    guess = Path(tempfile.gettempdir()) / "intake_bench" / "pyspy" / "bin" / "py-spy"
    return str(guess) if guess.exists() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("KEFU_BENCH_INTAKE_DATABASE_URL", DEFAULT_URL),
        help="PostgreSQL database to REBUILD (default $KEFU_BENCH_INTAKE_DATABASE_URL "
        "or %(default)s)",
    )
    parser.add_argument(
        "--servers",
        default="serve,serve:2",
        help="comma-separated variants: serve (kefu serve --no-worker), serve:N (the same "
        "with --workers N) and uvicorn:N (uvicorn --factory kefu.app:create_app --workers N); "
        "default %(default)s",
    )
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--retry-share", type=float, default=0.05)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument(
        "--client-processes",
        type=int,
        default=1,
        help="split the load generator over this many processes (when it is the bottleneck)",
    )
    parser.add_argument(
        "--py-spy",
        default=_pyspy_default(),
        help="py-spy executable: profile the server during an extra phase (default: found "
        "on PATH or in $TMPDIR/intake_bench/pyspy/bin)",
    )
    parser.add_argument("--profile-tickets", type=int, default=3_000)
    parser.add_argument(
        "--profile-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "kefu-bench-intake",
        help="where server logs and py-spy samples are kept (default %(default)s)",
    )
    parser.add_argument("--in-process-tickets", type=int, default=200)
    parser.add_argument(
        "--vacuum-every",
        type=float,
        default=15.0,
        help="when the server runs with autovacuum off, VACUUM (ANALYZE) the written tables "
        "this often during a run, as autovacuum would (0: never); default %(default)s s",
    )
    parser.add_argument("--no-db-limit", action="store_true")
    parser.add_argument("--no-explain", action="store_true")
    args = parser.parse_args(argv)
    specs = [s.strip() for s in args.servers.split(",") if s.strip()]

    from kefu.db import make_engine

    started = stamp()
    results = []
    args.profile_dir.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        results.append(measure_variant(spec, args))
    # The database as the last variant left it: statements per ticket, then the limit.
    progress(f"in process: statements of {args.in_process_tickets} intakes")
    inproc = in_process_pass(
        args.database_url, args.customers, args.in_process_tickets, not args.no_explain
    )
    limit = None
    if not args.no_db_limit:
        progress(f"database limit: {args.tickets} tickets' rows by plain psycopg")
        limit = db_limit(args.database_url, args.tickets, args.concurrency)
        progress(f"database limit: {limit['tickets_per_s']} tickets/s")
    engine = make_engine(args.database_url)
    with engine.connect() as conn:
        pg_version = str(conn.scalar(text("SHOW server_version")))
        settings = dict(
            conn.execute(
                text(
                    "SELECT name, setting FROM pg_settings WHERE name IN ('shared_buffers', "
                    "'synchronous_commit', 'fsync', 'max_connections', 'wal_level')"
                )
            ).all()
        )
    engine.dispose()
    best = max(results, key=lambda r: r["tickets_per_s"])
    result: dict[str, Any] = {
        "benchmark": "ticket_intake",
        "date": started,
        "database": "postgresql",
        "endpoint": f"POST {ENDPOINT} (Idempotency-Key)",
        "tickets": args.tickets,
        "concurrency": args.concurrency,
        "retry_share": args.retry_share,
        "target_tickets_per_s": TARGET_RATE,
        "target_p99_ms": TARGET_P99_MS,
        "pass": any(r["pass"] for r in results),
        "best": {
            "server": best["server"],
            "tickets_per_s": best["tickets_per_s"],
            "p99_ms": best["p99_ms"],
        },
        "variants": results,
        "in_process": inproc,
    }
    if limit is not None:
        result["database_limit"] = limit
        result["share_of_database_limit"] = {
            r["server"]: round(r["tickets_per_s"] / limit["tickets_per_s"], 3) for r in results
        }
    result["machine"] = {**machine(pg_version), "postgresql_settings": settings}
    emit(result)
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
