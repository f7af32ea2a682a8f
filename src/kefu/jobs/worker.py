"""The worker loop: every job in turn, each in its own transaction, then a pause.

Several workers may run against one PostgreSQL database; jobs coordinate through the
database (set-based statements, row claims), never through this process's memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from kefu.db import unit_of_work
from kefu.jobs import (
    deliver,
    escalate,
    holiday_data,
    housekeeping,
    loyalty,
    mail_fetch,
    retier,
    visits,
)

log = logging.getLogger("kefu.worker")

JOBS: list[tuple[str, Callable[[Session], object]]] = [
    ("housekeeping", housekeeping.run),
    ("retier", retier.run),
    ("escalate", escalate.run),
    ("holiday_data", holiday_data.run),
    ("visits", visits.run),
    ("loyalty", loyalty.run),
]
# Jobs that hold a network connection open take the session factory and commit their own
# small transactions (one per mail), so that nothing waits on the network inside one.
FACTORY_JOBS: list[tuple[str, Callable[[sessionmaker[Session]], object]]] = [
    ("mail_fetch", mail_fetch.run),
]


def run_once(factory: sessionmaker[Session]) -> dict[str, object]:
    results: dict[str, object] = {}
    for name, job in JOBS:
        try:
            with unit_of_work(factory) as session:
                results[name] = job(session)
        except Exception:  # one failing job must not stop the others
            log.exception("job %s failed", name)
            results[name] = "failed"
    try:
        results["deliver"] = deliver.run(factory)
    except Exception:
        log.exception("job deliver failed")
        results["deliver"] = "failed"
    for name, factory_job in FACTORY_JOBS:
        try:
            results[name] = factory_job(factory)
        except Exception:
            log.exception("job %s failed", name)
            results[name] = "failed"
    return results


def run_forever(
    factory: sessionmaker[Session], interval: float, stop: threading.Event | None = None
) -> None:
    """The sweeps every `interval` seconds, and the delivery loop in a thread beside them."""
    stop = stop or threading.Event()
    threading.Thread(
        target=deliver.run_forever, args=(factory, stop), daemon=True, name="kefu-deliver"
    ).start()
    while not stop.is_set():
        run_once(factory)
        stop.wait(interval)


def start_in_thread(factory: sessionmaker[Session], interval: float) -> threading.Event:
    """The embedded worker of `kefu serve` (SQLite, one process)."""
    stop = threading.Event()
    threading.Thread(
        target=run_forever, args=(factory, interval, stop), daemon=True, name="kefu-worker"
    ).start()
    return stop
