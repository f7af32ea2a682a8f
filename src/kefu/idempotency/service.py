"""The shared Idempotency-Key mechanism for creates.

A key is taken (`claim_many`, an INSERT … ON CONFLICT) in the transaction that does the
work, before the work, and gets the answer (`fill_many`) before the commit. A retry finds
the key taken and replays the first answer; a retry racing its first try waits at the
INSERT for the other transaction, then replays; a refused request lets its key go with
its rollback (or `release` in a batch that goes on).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kefu.clock import now
from kefu.db import is_postgres, padded
from kefu.errors import Invalid
from kefu.i18n import N_
from kefu.idempotency.models import IdempotencyKey
from kefu.scope import Viewer

KEEP = timedelta(hours=24)


@dataclass
class Stored:
    status_code: int
    body: Any
    location: str | None


def principal(viewer: Viewer) -> str:
    """Whose keys: a contact's are theirs alone, as a person's of staff are."""
    return f"contact:{viewer.contact_id}" if viewer.is_contact else str(viewer.staff_id)


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise Invalid.field("Idempotency-Key", N_("1–255 printable characters."))
    return key


def find_many(
    session: Session, principal: str, endpoint: str, keys: list[str]
) -> dict[str, IdempotencyKey]:
    """The kept answers of one caller and endpoint for these keys, by key."""
    rows = session.scalars(
        select(IdempotencyKey).where(
            IdempotencyKey.principal == principal,
            IdempotencyKey.endpoint == endpoint,
            IdempotencyKey.key.in_(padded(keys)),
            IdempotencyKey.created_at > now() - KEEP,
        )
    )
    return {row.key: row for row in rows}


def replay(row: IdempotencyKey, request_hash: str) -> Stored:
    """The first answer, for a retry of the same request; a different request is refused."""
    if row.request_hash != request_hash:
        raise Invalid.field(
            "Idempotency-Key", N_("This key was already used with a different request.")
        )
    return Stored(row.status_code, row.body, row.location)


def claim_many(session: Session, principal: str, endpoint: str, hashes: dict[str, str]) -> set[str]:
    """Take keys ({key: request hash}) for requests about to run, in the caller's
    transaction, and return those taken. A key kept by another transaction is not taken —
    one still in flight is waited for, so that its caller's answer can be replayed after —
    and an expired one is taken over. Before the commit every taken key gets its answer
    (`fill_many`) or is let go (`release`)."""
    if not hashes:
        return set()
    at = now()
    table = cast(Table, IdempotencyKey.__table__)
    insert = (pg_insert if is_postgres(session) else sqlite_insert)(table)
    stmt = insert.on_conflict_do_update(
        index_elements=["principal", "endpoint", "key"],
        set_={
            "request_hash": insert.excluded.request_hash,
            "status_code": 0,
            "created_at": insert.excluded.created_at,
        },
        where=table.c.created_at <= at - KEEP,
    ).returning(table.c.key)
    rows: list[dict[str, Any]] = [
        {
            "principal": principal,
            "endpoint": endpoint,
            "key": key,
            "request_hash": request_hash,
            "status_code": 0,  # no answer yet: filled before the commit
            "body": {},
            "location": None,
            "created_at": at,
        }
        for key, request_hash in hashes.items()
    ]
    # One statement for the lot (executemany with RETURNING: SQLAlchemy's "insertmanyvalues").
    return set(session.scalars(stmt, rows))


def fill_many(session: Session, principal: str, endpoint: str, answers: dict[str, Stored]) -> None:
    """The answers of keys taken with `claim_many`, in one statement."""
    if not answers:
        return
    table = cast(Table, IdempotencyKey.__table__)
    c = table.c
    session.execute(
        update(table)
        .where(c.principal == principal, c.endpoint == endpoint, c.key == bindparam("k"))
        .values(status_code=bindparam("s"), body=bindparam("b"), location=bindparam("l"))
        .execution_options(synchronize_session=False),
        [
            {"k": key, "s": a.status_code, "b": a.body, "l": a.location}
            for key, a in answers.items()
        ],
    )


def release(session: Session, principal: str, endpoint: str, keys: list[str]) -> None:
    """Let go of keys taken with `claim_many` whose requests were refused."""
    if keys:
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.principal == principal,
                IdempotencyKey.endpoint == endpoint,
                IdempotencyKey.key.in_(keys),
            )
        )


def purge(session: Session) -> int:
    result = session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at <= now() - KEEP)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]
