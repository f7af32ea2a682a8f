"""Process-local caches of immutable things read from the database, keyed by what makes
them immutable (a calendar's id and version, a service-level version's id).

Only a cache: every use first reads the key from the database, in the caller's
transaction, so several processes stay right without telling each other anything; an
entry of an old key is simply never asked for again. Nothing here is ever written back.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

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
