"""Cursor pagination shared by every list: {"items": [...], "next_cursor": "..."}.

Keyset on one unique, indexed column: the cursor is that column's value of the last item,
so a page costs an index range scan however deep the client pages.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from kefu.errors import Invalid
from kefu.i18n import N_

T = TypeVar("T")
MAX_LIMIT = 200


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps([value]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        (value,) = json.loads(raw)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise Invalid.field("cursor", N_("This cursor is not valid.")) from exc
    if not isinstance(value, str | int):
        raise Invalid.field("cursor", N_("This cursor is not valid."))
    return value


def paginate(
    session: Session,
    stmt: Select[Any],
    *,
    key: Any,
    limit: int = 50,
    cursor: str | None = None,
    descending: bool = False,
) -> Page[Any]:
    """One page of `stmt` ordered by the unique column `key`."""
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid.field("limit", N_("Must be between {low} and {high}."), low=1, high=MAX_LIMIT)
    if cursor:
        after = decode_cursor(cursor)
        stmt = stmt.where(key < after if descending else key > after)
    stmt = stmt.order_by(key.desc() if descending else key).limit(limit + 1)
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(getattr(rows[-1], key.key)) if more and rows else None
    return Page(rows, next_cursor)
