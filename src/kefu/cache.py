"""Process-local caches of immutable things read from the database, keyed by what makes
them immutable (a calendar's id and version, a service-level version's id).

Only a cache: every use first reads the key from the database, in the caller's
transaction, so several processes stay right without telling each other anything; an
entry of an old key is simply never asked for again. Nothing here is ever written back.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

V = TypeVar("V")

_ALL: list[KeyedCache[object]] = []


class KeyedCache(Generic[V]):
    """A bounded dict: when full it starts over (entries are cheap to rebuild)."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._data: dict[Hashable, V] = {}
        _ALL.append(self)  # type: ignore[arg-type]

    def get(self, key: Hashable) -> V | None:
        return self._data.get(key)

    def put(self, key: Hashable, value: V) -> V:
        if len(self._data) >= self.size:
            self._data.clear()
        self._data[key] = value
        return value

    def clear(self) -> None:
        self._data.clear()


def clear_all() -> None:
    """Forget every entry (tests that roll back and reuse ids; a restored database)."""
    for cache in _ALL:
        cache.clear()


# --- read once per batch ----------------------------------------------------------------------
# A batch of work in one transaction (many intakes committed together) asks the same
# questions again and again: the routing rules, a category's fields, a unit's calendar.
# Inside `reads_once(session)` such look-ups, made through `once()`, go to the database
# the first time only. The memo lives exactly as long as the block, so nothing outlives the
# transaction that read it; outside a block `once()` simply reads.

_MEMO = "kefu_reads_once"


@contextmanager
def reads_once(session: Any) -> Iterator[dict[Hashable, Any]]:
    """The block's memo; a nested block shares the outer one's (which clears it)."""
    if _MEMO in session.info:
        yield session.info[_MEMO]
        return
    memo: dict[Hashable, Any] = {}
    session.info[_MEMO] = memo
    try:
        yield memo
    finally:
        session.info.pop(_MEMO, None)


def once(session: Any, key: Hashable, read: Callable[[], V]) -> V:
    """`read()`, or what it gave for `key` earlier in the same `reads_once` block."""
    memo = session.info.get(_MEMO)
    if memo is None:
        return read()
    if key in memo:
        return memo[key]  # type: ignore[no-any-return]
    value = memo[key] = read()
    return value


def memo(session: Any) -> dict[Hashable, Any] | None:
    """The current block's memo (None outside a block), for state a batch keeps itself."""
    return session.info.get(_MEMO)
