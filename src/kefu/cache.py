"""Process-local caches of immutable things read from the database, keyed by what makes
them immutable (a calendar's id and version, a service-level version's id).

Only a cache: every use first reads the key from the database, in the caller's
transaction, so several processes stay right without telling each other anything; an
entry of an old key is simply never asked for again. Nothing here is ever written back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from sqlalchemy import CheckConstraint, Integer, String, select
from sqlalchemy.orm import Mapped, attributes, mapped_column

from kefu.db import Base

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


# --- configuration, kept between transactions ---------------------------------------------
# What every intake asks of the configuration (categories, custom fields, routing rules,
# units' functions, regions and calendars) changes rarely, yet a batch read it afresh in
# every transaction. Every write to those tables renews `config_stamp.stamp` (database
# triggers: see its migration), so a `reads_once` block reads the stamp — one query — and
# takes what this process read under the same stamp; several processes stay right without
# telling each other anything. Values kept so must not be changed by their users; ORM rows
# are kept as transient copies of their columns, never as another session's objects.


class ConfigStamp(Base):
    """One row: renewed by triggers on every write to the configuration tables."""

    __tablename__ = "config_stamp"
    __table_args__ = (CheckConstraint("id = 1", name="ck_config_stamp_one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stamp: Mapped[str] = mapped_column(String(32))


# The tables whose every write renews the stamp (triggers made by migrations). A read kept
# with `configuration()` may depend on these tables only; one more needs its trigger first.
CONFIG_TABLES = (
    "ticket_categories",
    "ticket_fields",
    "routing_rules",
    "units",
    "unit_functions",
    "calendars",
)

_STAMP = "kefu_config_stamp"
_CONFIG: KeyedCache[dict[Hashable, Any]] = KeyedCache(size=8)  # stamp -> {key: value}
_CONFIG_LOCK = threading.Lock()


def _configuration(session: Any) -> dict[Hashable, Any]:
    """This block's shared configuration values (read the stamp once per block)."""
    block = session.info[_MEMO]
    shared = block.get(_STAMP)
    if shared is None:
        stamp = session.scalar(select(ConfigStamp.stamp).where(ConfigStamp.id == 1))
        shared = _use(block, stamp)
    return shared  # type: ignore[no-any-return]


def _use(block: dict[Hashable, Any], stamp: str | None) -> dict[Hashable, Any]:
    with _CONFIG_LOCK:
        shared = _CONFIG.get(stamp) or _CONFIG.put(stamp, {})
    block[_STAMP] = shared
    return shared


def stamp_column() -> Any:
    """The configuration stamp as a column, for a block's first query to bring along (then
    `use_stamp`), sparing the block the query of its own."""
    return select(ConfigStamp.stamp).where(ConfigStamp.id == 1).scalar_subquery()


def use_stamp(session: Any, stamp: str | None) -> None:
    """The stamp a query of this block read before any configuration (see stamp_column)."""
    block = session.info.get(_MEMO)
    if block is not None and _STAMP not in block:
        _use(block, stamp)


def configuration(session: Any, key: Hashable, read: Callable[[], V]) -> V:
    """`once()` for a read of configuration only: inside a `reads_once` block it is also
    kept for later blocks of this process, as long as the configuration stamp is the same.
    Outside a block it simply reads (callers that edit what they read get their own rows)."""
    block = session.info.get(_MEMO)
    if block is None:
        return read()
    if key in block:
        return block[key]  # type: ignore[no-any-return]
    shared = _configuration(session)
    if key in shared:
        value = block[key] = shared[key]
        return value  # type: ignore[no-any-return]
    value = block[key] = read()
    shared[key] = _detached(value)
    return value


def known(session: Any, key: Hashable) -> bool:
    """Whether `configuration(session, key, …)` would answer without reading (batch
    read-aheads ask before reading many keys in one query)."""
    block = session.info.get(_MEMO)
    if block is None:
        return False
    if key in block:
        return True
    shared = _configuration(session)
    if key in shared:
        block[key] = shared[key]
        return True
    return False


def keep(session: Any, key: Hashable, value: Any) -> None:
    """Remember a configuration value a read-ahead found (inside a block; else nothing)."""
    block = session.info.get(_MEMO)
    if block is None:
        return
    block.setdefault(key, value)
    shared = block.get(_STAMP)
    if shared is not None:  # read after the stamp (`known` asked first): good for its stamp
        shared.setdefault(key, _detached(value))


def _detached(value: Any) -> Any:
    """The value with every ORM row in it replaced by a transient copy of its columns."""
    if isinstance(value, list):
        return [_detached(v) for v in value]
    if isinstance(value, dict):
        return {k: _detached(v) for k, v in value.items()}
    mapper = getattr(type(value), "__mapper__", None)
    if mapper is None:
        return value
    copy = mapper.class_manager.new_instance()
    for column in mapper.column_attrs:
        attributes.set_committed_value(copy, column.key, getattr(value, column.key))
    return copy
