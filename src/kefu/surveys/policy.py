"""Pure rules of surveys: the satisfaction index, CSAT and NPS, what counts as a low result,
and the signed survey token. No database, no clock.

Aggregates are ratios of sums, never means of ratios: Σ perceived ÷ Σ expected × 100 over
all answers of a group. Each answer then weighs by how much it expected, so an index of a
unit is exactly the index of one big survey of all its customers; a mean of per-answer
ratios would let a customer who expected little (3 ÷ 1 = 300) outweigh ten who expected
much, and could not be rolled up from monthly sums.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

SCALE = (1, 7)  # expectation and perception
CSAT_SCALE = (1, 5)
NPS_SCALE = (0, 10)


def index(perceived: int, expected: int) -> float | None:
    """Σ perceived ÷ Σ expected × 100; None without answers."""
    return round(perceived * 100.0 / expected, 1) if expected else None


def csat_share(satisfied: int, answers: int) -> float | None:
    """% of CSAT answers that are 4 or 5."""
    return round(satisfied * 100.0 / answers, 1) if answers else None


def nps(promoters: int, detractors: int, answers: int) -> float | None:
    """% promoters (9–10) − % detractors (0–6)."""
    return round((promoters - detractors) * 100.0 / answers, 1) if answers else None


@dataclass(frozen=True)
class Thresholds:
    index_below: float = 90.0
    csat_at_most: int = 2
    nps_at_most: int = 6


def low_reasons(
    perceived: int, expected: int, csat: int | None, nps_score: int | None, t: Thresholds
) -> list[str]:
    """Why an answer calls for service recovery (empty: it does not)."""
    reasons = []
    value = index(perceived, expected)
    if value is not None and value < t.index_below:
        reasons.append("index")
    if csat is not None and csat <= t.csat_at_most:
        reasons.append("csat")
    if nps_score is not None and nps_score <= t.nps_at_most:
        reasons.append("nps")
    return reasons


# --- the survey link's token ----------------------------------------------------------------
# "<invitation id, expiry>" packed, then an HMAC-SHA256 of it under the secret key, both
# base64url: short enough for an SMS, and nothing in it can be changed without the key.
# Single use is the database's part (the invitation's answered_at).


def _mac(key: str, payload: bytes) -> bytes:
    return hmac.new(key.encode(), b"survey:" + payload, hashlib.sha256).digest()[:18]


def sign(key: str, invitation_id: int, expires_at: datetime) -> str:
    payload = struct.pack(">QQ", invitation_id, int(expires_at.timestamp()))
    raw = payload + _mac(key, payload)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass(frozen=True)
class TokenFacts:
    invitation_id: int
    expires_at: datetime


def verify(key: str, token: str) -> TokenFacts | None:
    """The invitation a token names, or None when it is malformed or tampered with."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        return None
    if len(raw) != 34:
        return None
    payload, mac = raw[:16], raw[16:]
    if not hmac.compare_digest(mac, _mac(key, payload)):
        return None
    invitation_id, expires = struct.unpack(">QQ", payload)
    return TokenFacts(invitation_id, datetime.fromtimestamp(expires, UTC))
