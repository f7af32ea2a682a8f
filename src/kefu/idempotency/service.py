"""The shared Idempotency-Key mechanism for creates.

The key row is written in the same transaction as the object it created. A retry finds it
and gets the first answer; two racing first tries collide on the unique key, the loser's
transaction rolls back whole and it then replays the winner's answer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kefu.clock import now
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


def find(
    session: Session, principal: str, endpoint: str, key: str, request_hash: str
) -> Stored | None:
    row = find_many(session, principal, endpoint, [key]).get(key)
    return None if row is None else replay(row, request_hash)


def find_many(
    session: Session, principal: str, endpoint: str, keys: list[str]
) -> dict[str, IdempotencyKey]:
    """The kept answers of one caller and endpoint for these keys, by key."""
    rows = session.scalars(
        select(IdempotencyKey).where(
            IdempotencyKey.principal == principal,
            IdempotencyKey.endpoint == endpoint,
            IdempotencyKey.key.in_(keys),
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


def remember(
    session: Session,
    principal: str,
    endpoint: str,
    key: str,
    request_hash: str,
    stored: Stored,
    *,
    flush: bool = True,
) -> None:
    """Keep the answer in the caller's transaction. `flush=False` leaves the INSERT to the
    caller's next flush (a batch writes its keys together); a key taken meanwhile then fails
    that flush or the commit."""
    session.add(
        IdempotencyKey(
            principal=principal,
            endpoint=endpoint,
            key=key,
            request_hash=request_hash,
            status_code=stored.status_code,
            body=stored.body,
            location=stored.location,
            created_at=now(),
        )
    )
    if flush:
        session.flush()


def purge(session: Session) -> int:
    result = session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at <= now() - KEEP)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]
