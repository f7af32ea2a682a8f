"""Writing outbox rows; delivery comes with the channels capability."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kefu.clock import now
from kefu.notifications.models import OutboxMessage


def notify(
    session: Session,
    topic: str,
    recipient: str,
    payload: dict[str, Any],
    dedupe_key: str,
    *,
    known_new: bool = False,
) -> OutboxMessage | None:
    """Queue a notification in the caller's transaction; None when it is queued already.

    `known_new`: the caller knows no row can hold this key yet (it names an object made in
    this transaction), so the look-up is skipped; the unique key still guards it."""
    if not known_new and session.scalar(
        select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)
    ):
        return None
    row = OutboxMessage(
        topic=topic,
        recipient=recipient,
        payload=payload,
        dedupe_key=dedupe_key,
        available_at=now(),
        created_at=now(),
    )
    session.add(row)
    return row
