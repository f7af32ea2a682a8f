"""Business-time due computation: due dates per second in one process.

Figure (issue "Tickets"): >= 100,000 due dates per second, calendars cached, holiday
look-ups not per minute. Mixed starts over two years, targets from 15 minutes to two
weeks of business time, on the China calendar with make-up working days and an override.

    .venv/bin/python benchmarks/due_times.py [--n 300000]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time

from kefu.sla import holidays
from kefu.sla.policy import Calendar, due_at

TARGET_PER_S = 100_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300_000)
    args = parser.parse_args()
    rng = random.Random(1)
    split = ((clock_time(8, 30), clock_time(12)), (clock_time(13, 30), clock_time(17, 30)))
    cal = Calendar(
        hours={d: split for d in range(5)},
        overrides={date(2026, 12, 24): (), date(2026, 12, 27): split},
    )
    base = datetime(2025, 6, 1, tzinfo=UTC)
    starts = [base + timedelta(minutes=rng.randrange(60 * 24 * 540)) for _ in range(1000)]
    targets = [15, 30, 60, 120, 240, 480, 960, 1440, 2400, 4800]
    provider = holidays.china
    for s in starts:  # warm the per-year timelines (what a running server has)
        due_at(cal, s, 60, provider)
    begun = time.perf_counter()
    for i in range(args.n):
        due_at(cal, starts[i % 1000], targets[i % 10], provider)
    elapsed = time.perf_counter() - begun
    rate = args.n / elapsed
    print(
        json.dumps(
            {
                "benchmark": "due_times",
                "due_dates": args.n,
                "seconds": round(elapsed, 3),
                "per_second": round(rate),
                "target_per_second": TARGET_PER_S,
                "pass": rate >= TARGET_PER_S,
                "python": platform.python_version(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
