"""Deliveries under real concurrency: two workers at once, and a worker killed mid-delivery
(SIGKILL of a `kefu worker` process). The receiver is idempotent: it processes each
Idempotency-Key once and counts what arrives twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from kefu import clock
from kefu.channels import delivery, service
from kefu.channels.models import Delivery, DeliveryAttempt
from kefu.channels.schemas import WebhookIn
from kefu.db import make_sessionmaker, unit_of_work
from kefu.jobs import deliver
from kefu.notifications.service import notify
from kefu.scope import SYSTEM
from tests.channels.receiver import Receiver

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _seed(engine: Engine, url: str, events: int) -> list[str]:
    factory = make_sessionmaker(engine)
    with unit_of_work(factory) as s:
        service.create_webhook(s, SYSTEM, WebhookIn(name="idem", url=url, topics=["*"]))
        for i in range(events):
            notify(s, "ticket.created", "unit:1", {"i": i}, f"c{i}")
    with unit_of_work(factory) as s:
        delivery.fan_out(s, events)
        return list(s.scalars(select(Delivery.key)))


def _all_delivered(engine: Engine) -> bool:
    with engine.connect() as c:
        return not c.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.status != "delivered")
        )


def test_two_workers_never_deliver_the_same_attempt_twice(committed_engine, settings, receiver):
    settings.webhook_allow_private_targets = True
    settings.delivery_batch_size = 20
    settings.delivery_concurrency = 4
    receiver.delay = 0.002
    factory = make_sessionmaker(committed_engine)
    with unit_of_work(factory) as s:
        service.create_webhook(s, SYSTEM, WebhookIn(name="idem", url=receiver.url, topics=["*"]))
        for i in range(400):
            notify(s, "ticket.created", "unit:1", {"i": i}, f"w{i}")
    errors: list[BaseException] = []
    done = {"a": 0, "b": 0}

    def worker(name: str) -> None:
        own = make_sessionmaker(committed_engine)
        try:
            idle = 0
            while idle < 3:
                counts = deliver.run_batch(own)
                done[name] += counts.get("delivered", 0)
                idle = 0 if counts["routed"] or counts["claimed"] else idle + 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in done]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert _all_delivered(committed_engine)
    assert len(receiver.processed) == 400
    assert receiver.duplicates == 0  # not once did both take the same delivery
    assert done["a"] + done["b"] == 400
    if committed_engine.dialect.name == "postgresql":
        assert done["a"] and done["b"]  # SKIP LOCKED split the work


def _url_of(engine: Engine) -> str:
    if engine.dialect.name == "sqlite":
        return str(engine.url)
    with engine.connect() as c:
        schema = c.execute(text("SELECT current_schema()")).scalar()
    url = engine.url.render_as_string(hide_password=False)
    return f"{url}?options=-csearch_path%3D{schema}"


@pytest.mark.slow
def test_worker_killed_mid_delivery_loses_nothing_and_processes_nothing_twice(
    committed_engine, settings, receiver
):
    settings.webhook_allow_private_targets = True
    keys = _seed(committed_engine, receiver.url, 60)
    receiver.delay = 0.05  # slow enough to be caught in the middle
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "KEFU_DATABASE_URL": _url_of(committed_engine),
        "KEFU_SECRET_KEY": settings.secret_key,
        "KEFU_DATA_DIR": str(settings.data_dir),
        "KEFU_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "KEFU_DELIVERY_POLL_SECONDS": "0.05",
        "KEFU_DELIVERY_BATCH_SIZE": "20",
        "KEFU_DELIVERY_CONCURRENCY": "2",
        "KEFU_RETIER_INTERVAL_DAYS": "0",
        "KEFU_WORKER_INTERVAL_SECONDS": "600",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "kefu.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        end = time.monotonic() + 60
        while len(receiver.requests) < 10 and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert len(receiver.requests) >= 10
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    got_before = len(receiver.requests)
    assert got_before < len(keys)  # killed mid-way
    with committed_engine.connect() as c:
        in_flight = c.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.claim.is_not(None))
        )
    assert in_flight  # a claim was open when the worker died
    # Another worker, after the dead one's lease (clock moved instead of waiting 120 s).
    receiver.delay = 0
    later = clock.now() + timedelta(seconds=settings.delivery_lease_seconds + 1)
    clock.set_now(lambda: later)
    deliver.run(make_sessionmaker(committed_engine))
    assert _all_delivered(committed_engine)
    assert sorted(receiver.processed) == sorted(keys)  # nothing lost, each processed once
    assert receiver.duplicates <= 20  # re-sent only what was in flight, dropped by key
    with committed_engine.connect() as c:
        interrupted = c.scalar(
            select(func.count())
            .select_from(DeliveryAttempt)
            .where(DeliveryAttempt.outcome == "interrupted")
        )
    assert interrupted == in_flight
