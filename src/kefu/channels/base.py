"""The channel protocol, its errors and the registry (see the package docstring)."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

# Modules that define `channel`; a new channel adds its module here.
CHANNEL_MODULES: list[str] = [
    "kefu.channels.inapp",
    "kefu.channels.webhooks",
    "kefu.channels.robots",
    "kefu.mail.outgoing",
]


class DeliveryError(Exception):
    """A delivery failed; the message goes to the delivery log (keep it short)."""


class RetryableError(DeliveryError):
    """Try again later (receiver down, timeout, 5xx, rate limited).

    `unreachable=True` says the receiver could not be reached at all: the other
    deliveries to the same target in this batch are then postponed without trying."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


class PermanentError(DeliveryError):
    """Trying again cannot help (refused target, 4xx, bad configuration): dead letter."""


@dataclass(frozen=True)
class Event:
    """An outbox row as channels see it."""

    id: int
    topic: str
    recipient: str  # as written by the cause: staff:12, unit_head:5, unit:5, customer:9
    payload: dict[str, Any]
    dedupe_key: str
    created_at: datetime


@dataclass(frozen=True)
class Recipient:
    """A concrete recipient of an event, with the channels that reach them for it."""

    kind: str  # "staff", "customer" or "contact"
    id: int
    channels: frozenset[str]
    locale: str = "zh_CN"
    unit_id: int | None = None


@dataclass(frozen=True)
class PlannedEvent:
    event: Event
    recipients: tuple[Recipient, ...]
    unit_id: int | None  # the unit the event concerns (its robots carry it), if any


@dataclass(frozen=True)
class Planned:
    event_id: int
    target: str
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class Job:
    """One attempt of one delivery."""

    delivery_id: int
    key: str  # the idempotency key: the same for every attempt of this delivery
    channel: str
    target: str
    attempt: int  # 1 for the first
    data: dict[str, Any] | None
    event: Event


@dataclass
class Context:
    factory: sessionmaker[Session] | None
    deadline: float  # time.monotonic() by which deliver() must have returned
    extra: dict[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    name: str
    audiences: frozenset[str]  # recipient kinds it reaches: "staff", "customer"
    default_topics: frozenset[str] | None  # topics on by default; None: all

    def plan(self, session: Session, events: Sequence[PlannedEvent]) -> Iterable[Planned]: ...

    def deliver(self, job: Job, ctx: Context) -> str: ...


# Optional: `prepare(session, jobs) -> dict` on a channel is called in the claim's
# transaction with that channel's jobs of the batch; what it returns is `ctx.extra`.


_registry: dict[str, Channel] = {}
_loaded = False
_lock = threading.Lock()


def register(channel: Channel) -> Channel:
    """Add (or replace) a channel by name; the modules of CHANNEL_MODULES are loaded first."""
    channels()
    _registry[channel.name] = channel
    return channel


def unregister(name: str) -> None:
    _registry.pop(name, None)


def channels() -> dict[str, Channel]:
    """Every registered channel by name."""
    global _loaded
    if not _loaded:
        with _lock:
            if not _loaded:
                for module in CHANNEL_MODULES:
                    ch = getattr(importlib.import_module(module), "channel", None)
                    if ch is not None:
                        _registry.setdefault(ch.name, ch)
                _loaded = True
    return _registry


def get(name: str) -> Channel | None:
    return channels().get(name)


def default_on(channel: Channel, topic: str) -> bool:
    return channel.default_topics is None or topic in channel.default_topics
