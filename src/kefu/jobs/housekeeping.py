"""Forget what has expired: web and portal sessions, old portal invitations, old login
attempts, idempotency keys, delivered notifications."""

from __future__ import annotations

from sqlalchemy.orm import Session

from kefu.auth import service as auth
from kefu.channels import delivery
from kefu.config import get_settings
from kefu.idempotency import service as idem
from kefu.portal import service as portal


def run(session: Session) -> dict[str, int]:
    counts = auth.purge_expired(session)
    counts["idempotency_keys"] = idem.purge(session)
    counts.update(portal.purge_expired(session))
    done = delivery.purge(session, get_settings().delivery_keep_days)
    counts["notices"], counts["delivered_events"] = done["notices"], done["events"]
    return counts
