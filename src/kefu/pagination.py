"""Cursor pagination shared by every list: {"items": [...], "next_cursor": "..."}.

Keyset pagination: the cursor holds the sort key of the last item, so a page costs an index
range scan however deep the client pages. The key is one unique column, or a tuple of
columns ending in a unique one (e.g. revenue, then id).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, literal, tuple_
from sqlalchemy.orm import Session

from kefu.errors import Invalid
from kefu.i18n import N_
from kefu.scope import page_candidates

T = TypeVar("T")
MAX_LIMIT = 200


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def _typed(col: Any, value: Any) -> Any:
    """A cursor value back in its column's Python type (the cursor is JSON)."""
    try:
        kind = getattr(col.type, "impl_instance", col.type).python_type  # through decorators
    except NotImplementedError:
        return value
    try:
        if kind is Decimal:
            return Decimal(str(value))
        if kind is datetime:
            return datetime.fromisoformat(value)
        if kind is date:
            return date.fromisoformat(value)
        if kind is int:
            return int(value)
    except (ValueError, ArithmeticError, TypeError) as exc:
        raise Invalid.field("cursor", N_("This cursor is not valid.")) from exc
    return value


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps([_plain(v) for v in values]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise Invalid.field("cursor", N_("This cursor is not valid.")) from exc
    if (
        not isinstance(values, list)
        or len(values) != size
        or not all(isinstance(v, str | int) for v in values)
    ):
        raise Invalid.field("cursor", N_("This cursor is not valid."))
    return values


def paginate(
    session: Session,
    stmt: Select[Any],
    *,
    key: Any,
    limit: int = 50,
    cursor: str | None = None,
    descending: bool = False,
) -> Page[Any]:
    """One page of `stmt` ordered by `key` (a column, or a tuple ending in a unique one)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid.field("limit", N_("Must be between {low} and {high}."), low=1, high=MAX_LIMIT)
    cols = list(key) if isinstance(key, tuple | list) else [key]
    if cursor:
        after = [_typed(c, v) for c, v in zip(cols, decode_cursor(cursor, len(cols)), strict=True)]
        left = cols[0] if len(cols) == 1 else tuple_(*cols)
        # Typed binds: inside tuple_() a plain value would skip the column's type (e.g.
        # UTCDateTime's SQLite format) and compare as the wrong string.
        right = (
            after[0]
            if len(cols) == 1
            else tuple_(*[literal(v, c.type) for c, v in zip(cols, after, strict=True)])
        )
        stmt = stmt.where(left < right if descending else left > right)
    # A large scoped list (see kefu.scope.page_candidates): read part by part of its scope.
    candidates = page_candidates(session, stmt, cols, descending=descending, n=limit + 1)
    if candidates is not None:
        stmt = stmt.where(candidates)
    stmt = stmt.order_by(*[c.desc() if descending else c for c in cols]).limit(limit + 1)
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor([getattr(rows[-1], c.key) for c in cols]) if more and rows else None
    return Page(rows, next_cursor)
