"""Forget what has expired: web sessions, old login attempts, idempotency keys."""

from __future__ import annotations

from sqlalchemy.orm import Session

from kefu.auth import service as auth
from kefu.idempotency import service as idem


def run(session: Session) -> dict[str, int]:
    counts = auth.purge_expired(session)
    counts["idempotency_keys"] = idem.purge(session)
    return counts
