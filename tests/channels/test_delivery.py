"""The delivery framework: fan-out to recipients, retries with backoff, dead letters,
leases. A scripted channel (the receiver of this test) says how each attempt ends."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from kefu import clock
from kefu.channels import base, delivery
from kefu.channels.base import PermanentError, Planned, RetryableError
from kefu.channels.models import Delivery, DeliveryAttempt, Notice, NotificationPreference
from kefu.channels.policy import backoff_seconds, http_outcome
from kefu.jobs import deliver
from kefu.notifications.service import notify
from tests.factories import make_staff, make_unit


class Scripted:
    """Plans one delivery per event to 'sink:<topic>'; each attempt pops an outcome."""

    name = "scripted"
    audiences: frozenset[str] = frozenset()
    default_topics = None

    def __init__(self) -> None:
        self.script: list[str] = []
        self.keys: list[str] = []

    def plan(self, session, events):  # type: ignore[no-untyped-def]
        return [
            Planned(pe.event.id, f"sink:{pe.event.topic}", {"unit": pe.unit_id}) for pe in events
        ]

    def deliver(self, job, ctx):  # type: ignore[no-untyped-def]
        self.keys.append(job.key)
        what = self.script.pop(0) if self.script else "ok"
        if what == "retry":
            raise RetryableError("503 busy")
        if what == "down":
            raise RetryableError("connection refused", unreachable=True)
        if what == "permanent":
            raise PermanentError("404 not found")
        return "200"


@pytest.fixture
def sink() -> Iterator[Scripted]:
    ch = Scripted()
    base.register(ch)
    yield ch
    base.unregister(ch.name)


def _rows(db, model):  # type: ignore[no-untyped-def]
    return list(db.scalars(select(model).order_by(model.id)))


def test_recipients_become_notices_by_preference(db, session_factory):
    unit = make_unit(db)
    head = make_staff(db, unit, roles=("supervisor",))
    agent = make_staff(db, unit, roles=("agent",))
    quiet = make_staff(db, unit, roles=("agent",))
    db.add(
        NotificationPreference(
            staff_id=quiet.id, topic="ticket.created", channel="inapp", enabled=False
        )
    )
    notify(db, "sla.breach", f"unit_head:{unit.id}", {"ticket_id": 0}, "t1")
    notify(db, "ticket.created", f"unit:{unit.id}", {"n": 1}, "t2")
    notify(db, "ticket.reply", f"staff:{agent.id}", {"n": 2}, "t3")
    db.commit()
    deliver.run(session_factory)
    got = {(n.staff_id, n.topic) for n in _rows(db, Notice)}
    assert got == {
        (head.id, "sla.breach"),
        (head.id, "ticket.created"),
        (agent.id, "ticket.created"),
        (agent.id, "ticket.reply"),
    }  # the quiet agent switched ticket.created off
    # Routing twice writes nothing twice.
    assert deliver.run(session_factory)["routed"] == 0


def test_retries_back_off_then_deliver_with_one_key(db, session_factory, settings, sink):
    settings.delivery_backoff_base_seconds = 10
    notify(db, "ticket.created", "staff:999999", {"n": 1}, "k1")
    db.commit()
    sink.script = ["retry", "retry"]
    assert deliver.run(session_factory)["retry"] == 1
    row = _rows(db, Delivery)[0]
    db.refresh(row)
    assert row.status == "pending" and row.attempts == 1 and row.last_error == "503 busy"
    pause = (row.next_attempt_at - clock.now()).total_seconds()
    assert 4 <= pause <= 10.5  # first pause: 5–10 s
    assert deliver.run(session_factory).get("claimed") == 0  # not due yet
    for seconds in (11, 11 + 21):
        later = clock.now() + timedelta(seconds=seconds)
        clock.set_now(lambda later=later: later)  # type: ignore[misc]
        deliver.run(session_factory)
    db.refresh(row)
    assert row.status == "delivered" and row.attempts == 3 and row.claim is None
    assert len(set(sink.keys)) == 1 and len(sink.keys) == 3
    log = [(a.attempt, a.outcome) for a in _rows(db, DeliveryAttempt)]
    assert log == [(1, "retry"), (2, "retry"), (3, "delivered")]


def test_permanent_errors_and_exhausted_attempts_go_to_the_dead_letters(
    db, session_factory, settings, sink
):
    settings.delivery_max_attempts = 2
    notify(db, "a.permanent", "staff:1", {}, "p1")
    notify(db, "b.flaky", "staff:1", {}, "p2")
    db.commit()
    sink.script = ["permanent", "retry"]
    deliver.run(session_factory)
    later = clock.now() + timedelta(seconds=30)
    clock.set_now(lambda: later)
    sink.script = ["retry"]
    deliver.run(session_factory)
    rows = {r.target: r for r in _rows(db, Delivery)}
    for r in rows.values():
        db.refresh(r)
    assert rows["sink:a.permanent"].status == "dead"
    assert rows["sink:a.permanent"].attempts == 1
    assert rows["sink:b.flaky"].status == "dead" and rows["sink:b.flaky"].attempts == 2


def test_unreachable_receiver_postpones_the_rest_of_the_batch_uncounted(
    db, session_factory, settings, sink
):
    for i in range(5):
        notify(db, "same.topic", "staff:1", {"i": i}, f"u{i}")
    db.commit()
    settings.delivery_concurrency = 1
    sink.script = ["down"]
    counts = deliver.run(session_factory)
    assert counts["retry"] == 1 and counts["skipped"] == 4
    assert len(sink.keys) == 1  # one try, not five
    attempts = sorted(r.attempts for r in _rows(db, Delivery))
    assert attempts == [0, 0, 0, 0, 1]


def test_a_dead_worker_leaves_its_claim_to_the_next_after_the_lease(
    db, session_factory, settings, sink
):
    notify(db, "x.y", "staff:1", {}, "l1")
    db.commit()
    with session_factory() as s:
        delivery.fan_out(s, 10)
        claimed = delivery.claim(s, 10, lease_seconds=60)
        s.commit()
    assert len(claimed.jobs) == 1
    # ... the worker dies here: nothing recorded. Nobody takes it during the lease:
    with session_factory() as s:
        assert delivery.claim(s, 10, lease_seconds=60).jobs == []
        s.rollback()
    later = clock.now() + timedelta(seconds=61)
    clock.set_now(lambda: later)
    counts = deliver.run(session_factory)
    assert counts["delivered"] == 1
    log = [(a.attempt, a.outcome) for a in _rows(db, DeliveryAttempt)]
    assert log == [(1, "interrupted"), (2, "delivered")]
    # A late answer from the dead worker's claim changes nothing.
    with session_factory() as s:
        stale = delivery.record(s, claimed, delivery.attempt(claimed))
        s.commit()
    assert stale == {"delivered": 1}
    row = _rows(db, Delivery)[0]
    db.refresh(row)
    assert row.status == "delivered" and row.attempts == 2


def test_backoff_doubles_with_jitter_and_caps():
    rng = random.Random(7)
    for attempt, step in [(1, 10), (2, 20), (3, 40), (10, 3600), (100, 3600)]:
        for _ in range(20):
            pause = backoff_seconds(attempt, 10, 3600, rng)
            assert step / 2 <= pause <= step
    assert http_outcome(200) == http_outcome(204) == "ok"
    assert http_outcome(503) == http_outcome(429) == http_outcome(408) == "retry"
    assert http_outcome(404) == http_outcome(301) == http_outcome(400) == "permanent"


def test_housekeeping_forgets_what_is_done_and_keeps_dead_letters(
    db, session_factory, settings, sink
):
    from kefu.jobs import housekeeping
    from kefu.notifications.models import OutboxMessage

    unit = make_unit(db)
    agent = make_staff(db, unit, roles=("agent",))
    notify(db, "ticket.reply", "staff:999999", {}, "h2")  # becomes a dead letter
    db.commit()
    sink.script = ["permanent"]
    deliver.run(session_factory)
    notify(db, "ticket.created", f"staff:{agent.id}", {}, "h1")  # delivered; notice read
    db.commit()
    deliver.run(session_factory)
    for n in _rows(db, Notice):
        n.read_at = clock.now()
    db.commit()
    later = clock.now() + timedelta(days=settings.delivery_keep_days + 1)
    clock.set_now(lambda: later)
    counts = housekeeping.run(db)
    assert counts["notices"] == 1 and counts["delivered_events"] == 1
    left = {o.dedupe_key for o in _rows(db, OutboxMessage)}
    assert left == {"h2"}
    assert [d.status for d in _rows(db, Delivery)] == ["dead"]


def test_a_contact_recipient_concerns_its_customers_unit(db, session_factory, sink):
    from kefu.channels import recipients
    from kefu.channels.base import Event
    from kefu.customers.models import Contact
    from tests.factories import make_customer

    unit = make_unit(db)
    customer = make_customer(db, unit)
    contact = Contact(customer_id=customer.id, name="李四", email="li@example.com")
    db.add(contact)
    db.flush()
    event = Event(1, "portal.invitation", f"contact:{contact.id}", {}, "c1", clock.now())
    (planned,) = recipients.resolve(db, [event])
    assert planned.unit_id == unit.id
    assert [(r.kind, r.id) for r in planned.recipients] == [("contact", contact.id)]
