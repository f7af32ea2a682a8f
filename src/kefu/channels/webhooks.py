"""Webhooks: admins subscribe URLs to event types; each event is POSTed as JSON, signed.

The body (schema `kefu.event/1`, see docs/webhooks.md) is the same for every attempt:

    {"schema": "kefu.event/1", "id": "evt_42", "type": "ticket.created",
     "created_at": "2026-11-26T01:02:03+00:00", "data": {...the event's payload...}}

Headers: `Kefu-Event-Id`, `Kefu-Event-Type`, `Idempotency-Key` (the delivery's key, the
same for every attempt), `Kefu-Attempt`, `Kefu-Timestamp` (Unix seconds) and
`Kefu-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kefu import crypto
from kefu.channels import http
from kefu.channels.base import (
    Context,
    Event,
    Job,
    PermanentError,
    Planned,
    PlannedEvent,
    RetryableError,
)
from kefu.channels.models import WebhookSubscription
from kefu.channels.policy import http_outcome
from kefu.config import get_settings

SCHEMA = "kefu.event/1"
ALL_TOPICS = "*"


def body(event: Event) -> bytes:
    doc = {
        "schema": SCHEMA,
        "id": f"evt_{event.id}",
        "type": event.topic,
        "created_at": event.created_at.isoformat(),
        "data": event.payload,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, timestamp: int, payload: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(
    secret: str, timestamp: str, payload: bytes, signature: str, tolerance: int = 300
) -> bool:
    """What a receiver does (docs/webhooks.md has the same for receivers to copy)."""
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, int(timestamp), payload)
    return any(hmac.compare_digest(expected, s.strip()) for s in signature.split(","))


class WebhookChannel:
    name = "webhook"
    audiences: frozenset[str] = frozenset()
    default_topics: frozenset[str] | None = None

    def plan(self, session: Session, events: Sequence[PlannedEvent]) -> Iterable[Planned]:
        subs = session.execute(
            select(WebhookSubscription.id, WebhookSubscription.topics).where(
                WebhookSubscription.is_active.is_(True)
            )
        ).all()
        for pe in events:
            for sub_id, topics in subs:
                if pe.event.topic in topics or ALL_TOPICS in topics:
                    yield Planned(pe.event.id, f"webhook:{sub_id}")

    def prepare(self, session: Session, jobs: Sequence[Job]) -> dict[str, Any]:
        """In the claim's transaction: the subscriptions the jobs go to."""
        ids = {int(j.target.split(":", 1)[1]) for j in jobs}
        rows = session.execute(
            select(
                WebhookSubscription.id,
                WebhookSubscription.url,
                WebhookSubscription.secret,
                WebhookSubscription.is_active,
            ).where(WebhookSubscription.id.in_(ids))
        ).all()
        return {f"webhook:{r.id}": (r.url, r.secret, r.is_active) for r in rows}

    def deliver(self, job: Job, ctx: Context) -> str:
        sub = ctx.extra.get(job.target)
        if sub is None:
            raise PermanentError("the subscription was deleted")
        url, sealed, active = sub
        if not active:
            raise PermanentError("the subscription is disabled")
        settings = get_settings()
        payload = body(job.event)
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Kefu-Webhooks/1",
            "Kefu-Event-Id": f"evt_{job.event.id}",
            "Kefu-Event-Type": job.event.topic,
            "Idempotency-Key": job.key,
            "Kefu-Attempt": str(job.attempt),
            "Kefu-Timestamp": str(ts),
            "Kefu-Signature": sign(crypto.decrypt(sealed, crypto.INTEGRATION_SECRET), ts, payload),
        }
        answer = http.post(
            url,
            payload,
            headers,
            timeout=settings.webhook_timeout_seconds,
            max_response=settings.webhook_max_response_bytes,
            allow_private=settings.webhook_allow_private_targets,
            deadline=ctx.deadline,
        )
        outcome = http_outcome(answer.status)
        note = f"HTTP {answer.status}"
        if outcome == "retry":
            raise RetryableError(note)
        if outcome == "permanent":
            raise PermanentError(note)
        return note


channel = WebhookChannel()
