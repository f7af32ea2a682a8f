"""Writing outbox rows (delivered by the channels: kefu.channels)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import String, Table, func, literal, literal_column, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kefu.clock import now
from kefu.db import UTCDateTime, is_postgres
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
    row = OutboxMessage(**message_values(topic, recipient, payload, dedupe_key))
    session.add(row)
    return row


def message_values(
    topic: str, recipient: str, payload: dict[str, Any], dedupe_key: str
) -> dict[str, Any]:
    """The columns of an outbox row (`notify` adds it; a batch writes many at once)."""
    at = now()
    return {
        "topic": topic,
        "recipient": recipient,
        "payload": payload,
        "dedupe_key": dedupe_key,
        "available_at": at,
        "created_at": at,
    }


def json_object(session: Session, pairs: dict[str, Any]) -> Any:
    """A JSON object built in SQL from (key, column) pairs, on both databases."""
    args: list[Any] = []
    for key, value in pairs.items():
        args += [literal_column("'" + key.replace("'", "''") + "'", String), value]
    return func.json_build_object(*args) if is_postgres(session) else func.json_object(*args)


def notify_many(
    session: Session, topic: str, rows: Any, *, recipient: Any, payload: Any, dedupe_key: Any
) -> None:
    """Queue one notification per row of `rows` (a select's FROM and WHERE) in one
    INSERT … SELECT; `recipient`, `payload` (see json_object) and `dedupe_key` are SQL
    expressions over it. Keys queued already are skipped."""
    at = now()
    table = cast(Table, OutboxMessage.__table__)
    source = rows.with_only_columns(
        literal(topic, String),
        recipient,
        payload,
        dedupe_key,
        literal("pending", String),
        literal_column("0"),
        literal(at, UTCDateTime()),
        literal(at, UTCDateTime()),
    )
    insert = (pg_insert if is_postgres(session) else sqlite_insert)(table)
    session.execute(
        insert.from_select(
            [
                "topic",
                "recipient",
                "payload",
                "dedupe_key",
                "status",
                "attempts",
                "available_at",
                "created_at",
            ],
            source,
        ).on_conflict_do_nothing()
    )
