"""The customer's activity timeline: each capability contributes events.

A provider is `fn(session, customer_id, before, limit) -> list[TimelineItem]`, newest
first. Providers are named here by import path so this module needs no import of the
capabilities that plug in (tickets, visits and surveys add their line as they arrive).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kefu.audit.models import AuditEntry
from kefu.i18n import N_
from kefu.scope import Viewer, get_visible

PROVIDERS = [
    "kefu.customers.timeline:record_changes",
    "kefu.tiering.timeline:tier_changes",
    "kefu.tickets.timeline:tickets_opened",
    "kefu.visits.timeline:visits_finished",
    "kefu.visits.timeline:surveys_answered",
]


@dataclass
class TimelineItem:
    at: datetime
    kind: str  # e.g. "change", "tier", later "ticket", "visit", "survey"
    title: str  # catalogue msgid
    params: dict[str, Any] = field(default_factory=dict)
    actor: str | None = None
    ref: str | None = None  # a link target inside Kefu, when there is one


Provider = Callable[[Session, int, datetime | None, int], list[TimelineItem]]

TITLES = {
    "customer.create": N_("Customer created"),
    "customer.update": N_("Archive changed: {fields}"),
    "customer.import_create": N_("Customer imported"),
    "customer.import_update": N_("Archive updated by an import: {fields}"),
    "customer.pin": N_("Tier pinned"),
    "customer.unpin": N_("Tier pin removed"),
}


def record_changes(
    session: Session, customer_id: int, before: datetime | None, limit: int
) -> list[TimelineItem]:
    """Changes to the archive itself, from the audit log."""
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.object_type == "customer", AuditEntry.object_id == str(customer_id))
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(AuditEntry.at < before)
    return [
        TimelineItem(
            at=e.at,
            kind="change",
            title=TITLES.get(e.action, N_("Archive changed: {fields}")),
            params={"fields": ", ".join(sorted(e.changes))},
            actor=e.actor_name,
        )
        for e in session.scalars(stmt)
    ]


def _load(path: str) -> Provider:
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)  # type: ignore[no-any-return]


def timeline(
    session: Session,
    viewer: Viewer,
    customer_id: int,
    before: datetime | None = None,
    limit: int = 50,
) -> list[TimelineItem]:
    """The newest `limit` events of a visible customer, older than `before`."""
    from kefu.customers.models import Customer

    customer = get_visible(session, Customer, customer_id, viewer)
    streams = [_load(p)(session, customer.id, before, limit) for p in PROVIDERS]
    return list(heapq.merge(*streams, key=lambda i: i.at, reverse=True))[:limit]
