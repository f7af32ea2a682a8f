"""The delivery loop: route outbox events to the channels and run the due deliveries
(kefu.channels.delivery). Each step is its own transaction; attempts run outside any.

`kefu worker` and the embedded worker of `kefu serve` run it in a thread of its own, apart
from the slower sweeps, so notifications leave within about KEFU_DELIVERY_POLL_SECONDS.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from kefu.channels import delivery
from kefu.config import get_settings
from kefu.db import unit_of_work

log = logging.getLogger("kefu.worker.deliver")


def run_batch(factory: sessionmaker[Session]) -> dict[str, int]:
    """One batch: route pending events, claim due deliveries, attempt, record."""
    settings = get_settings()
    with unit_of_work(factory) as session:
        routed = delivery.fan_out(session, settings.delivery_batch_size)
    with unit_of_work(factory) as session:
        claimed = delivery.claim(
            session, settings.delivery_batch_size, settings.delivery_lease_seconds
        )
    counts: dict[str, int] = {"routed": routed, "claimed": len(claimed.jobs)}
    if claimed.jobs:
        results = delivery.attempt(claimed, factory, settings)
        with unit_of_work(factory) as session:
            counts.update(delivery.record(session, claimed, results, settings))
    return counts


def run(factory: sessionmaker[Session], max_seconds: float = 60.0) -> dict[str, int]:
    """Batches until nothing is left to do now (or `max_seconds` have passed)."""
    totals: dict[str, int] = {}
    end = time.monotonic() + max_seconds
    while True:
        counts = run_batch(factory)
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v
        if (not counts["routed"] and not counts["claimed"]) or time.monotonic() > end:
            return totals


def run_forever(factory: sessionmaker[Session], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            counts = run_batch(factory)
            busy = counts["routed"] or counts["claimed"]
        except Exception:
            log.exception("delivery batch failed")
            busy = False
        if not busy:
            stop.wait(get_settings().delivery_poll_seconds)
