"""Webhooks against a real HTTP receiver on 127.0.0.1 (allowed through the setting)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from kefu.channels import http, service, webhooks
from kefu.channels.models import Delivery, DeliveryAttempt
from kefu.channels.schemas import WebhookIn
from kefu.errors import Invalid
from kefu.jobs import deliver
from kefu.notifications.service import notify
from kefu.scope import SYSTEM
from tests.channels.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def local(settings):  # type: ignore[no-untyped-def]
    settings.webhook_allow_private_targets = True
    settings.delivery_backoff_base_seconds = 0.2
    settings.delivery_backoff_max_seconds = 0.5
    return settings


def _subscribe(db, url, topics=("ticket.created",)):  # type: ignore[no-untyped-def]
    sub, secret = service.create_webhook(
        db, SYSTEM, WebhookIn(name="crm", url=url, topics=list(topics))
    )
    return sub, secret


def _deliveries(db):  # type: ignore[no-untyped-def]
    db.expire_all()
    return list(
        db.scalars(select(Delivery).where(Delivery.channel == "webhook").order_by(Delivery.id))
    )


def test_a_signed_versioned_payload_reaches_the_receiver(db, session_factory, local, receiver):
    _sub, secret = _subscribe(db, receiver.url, ["ticket.created", "sla.breach"])
    notify(db, "ticket.created", "unit:1", {"ticket_id": 7, "number": "T2026-0000007"}, "e1")
    notify(db, "ticket.reply", "customer:1", {"ticket_id": 7}, "e2")  # not subscribed
    db.commit()
    deliver.run(session_factory)
    assert len(receiver.requests) == 1
    _path, headers, body = receiver.requests[0]
    doc = json.loads(body)
    assert doc["schema"] == "kefu.event/1" and doc["type"] == "ticket.created"
    assert doc["data"] == {"ticket_id": 7, "number": "T2026-0000007"}
    assert doc["id"] == headers["Kefu-Event-Id"]
    assert webhooks.verify(secret, headers["Kefu-Timestamp"], body, headers["Kefu-Signature"])
    assert not webhooks.verify(
        "another", headers["Kefu-Timestamp"], body, headers["Kefu-Signature"]
    )
    assert not webhooks.verify(
        secret, headers["Kefu-Timestamp"], body + b" ", headers["Kefu-Signature"]
    )
    assert headers["Idempotency-Key"] == _deliveries(db)[0].key
    assert _deliveries(db)[0].status == "delivered"


def test_urls_inside_the_network_are_refused(db, settings):
    settings.webhook_allow_private_targets = False
    for url in (
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "ftp://example.com/",
        "file:///etc/passwd",
        "http://user:pw@example.com/",
    ):
        with pytest.raises(Invalid) as err:
            _subscribe(db, url)
        assert err.value.errors[0].field == "url", url
    for address, public in [
        ("8.8.8.8", True),
        ("100.64.0.1", False),
        ("192.168.1.1", False),
        ("172.16.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("2001:4860:4860::8888", True),
    ]:
        assert http.is_public(address) is public, address


def test_a_target_that_turned_private_is_dead_lettered(db, session_factory, local, receiver):
    _subscribe(db, receiver.url)
    notify(db, "ticket.created", "unit:1", {}, "p1")
    db.commit()
    local.webhook_allow_private_targets = False  # e.g. DNS now answers with 127.0.0.1
    deliver.run(session_factory)
    (row,) = _deliveries(db)
    assert row.status == "dead" and "non-public" in (row.last_error or "")
    assert receiver.requests == []


def test_receiver_down_retries_and_catches_up(db, session_factory, local, receiver):
    _subscribe(db, receiver.url)
    receiver.stop()
    for i in range(30):
        notify(db, "ticket.created", "unit:1", {"i": i}, f"down{i}")
    db.commit()
    counts = deliver.run(session_factory)
    assert counts.get("delivered", 0) == 0 and counts["retry"] >= 1
    assert all(r.status == "pending" for r in _deliveries(db))
    time.sleep(0.3)
    deliver.run(session_factory)  # still down: retried, postponed again
    receiver.port = receiver.port  # same address comes back
    receiver.start()
    end = time.monotonic() + 20
    while time.monotonic() < end and any(r.status != "delivered" for r in _deliveries(db)):
        deliver.run(session_factory)
        time.sleep(0.1)
    rows = _deliveries(db)
    assert all(r.status == "delivered" for r in rows)
    assert sorted(receiver.processed) == sorted(r.key for r in rows)
    assert receiver.duplicates == 0
    log = db.scalars(select(DeliveryAttempt.outcome)).all()
    assert "retry" in log and log.count("delivered") == 30


def test_refusals_go_to_the_dead_letters_and_an_admin_retries(db, session_factory, local, receiver):
    _subscribe(db, receiver.url)
    notify(db, "ticket.created", "unit:1", {}, "r1")
    db.commit()
    receiver.status = 410
    deliver.run(session_factory)
    (row,) = _deliveries(db)
    assert row.status == "dead" and row.last_error == "HTTP 410" and row.attempts == 1
    receiver.status = 200
    service.retry_delivery(db, SYSTEM, row.id)
    db.commit()
    deliver.run(session_factory)
    (row,) = _deliveries(db)
    assert row.status == "delivered"
    outcomes = [a.outcome for a in service.delivery_attempts(db, SYSTEM, row.id)]
    assert outcomes == ["dead", "manual", "delivered"]
    with pytest.raises(Invalid):
        service.retry_delivery(db, SYSTEM, row.id)


def test_slow_and_chatty_receivers_are_cut_short(db, session_factory, local, receiver):
    _subscribe(db, receiver.url)
    notify(db, "ticket.created", "unit:1", {}, "s1")
    db.commit()
    local.webhook_timeout_seconds = 0.3
    receiver.delay = 1.0
    deliver.run(session_factory)
    (row,) = _deliveries(db)
    assert row.status == "pending" and "timed out" in (row.last_error or "")
    receiver.delay = 0
    receiver.answer = b"x" * 1_000_000
    local.webhook_max_response_bytes = 1000
    time.sleep(0.6)
    deliver.run(session_factory)
    (row,) = _deliveries(db)
    assert row.status == "delivered"
