"""Pure rules of delivery: backoff, what a receiver's answer means. No DB, no clock."""

from __future__ import annotations

import random


def backoff_seconds(
    attempt: int, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """The pause after failed attempt number `attempt` (1 for the first): exponential,
    `base` × 2^(attempt−1) capped at `cap`, with "equal jitter" — a random point in the
    upper half — so receivers coming back are not hit by every retry at once."""
    step = min(cap, base * (2 ** max(0, min(attempt - 1, 40))))
    r = (rng or random).random()
    return step / 2 + r * step / 2


def http_outcome(status: int) -> str:
    """'ok', 'retry' or 'permanent' for an HTTP status from a receiver.

    2xx is delivered. 408 (timeout), 425, 429 (rate limited) and every 5xx are worth
    another try; other answers (3xx — redirects are not followed —, 4xx) say the request
    itself is wrong and go to the dead letters at once."""
    if 200 <= status < 300:
        return "ok"
    if status in (408, 425, 429) or status >= 500:
        return "retry"
    return "permanent"
