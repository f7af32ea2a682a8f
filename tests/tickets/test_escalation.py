"""The SLA escalation ladder: warning at a share of the target (business time), the unit
head at the breach, the parent unit after a delay; each step exactly once, on the timeline
and in the outbox; paused tickets wait, resolved ones stop; concurrent workers never
escalate the same thing twice."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kefu import clock
from kefu.config import use_settings
from kefu.db import make_sessionmaker, unit_of_work
from kefu.i18n import gettext, set_locale
from kefu.jobs import escalate, worker
from kefu.notifications.models import OutboxMessage
from kefu.scope import SYSTEM
from kefu.tickets import escalation
from kefu.tickets import service as tickets
from kefu.tickets.models import EscalationStep, Ticket, TicketEvent
from kefu.tickets.schemas import MessageIn, TicketCreate
from tests.factories import make_customer, make_staff, make_unit

SH = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant of the week of Tuesday 24 November 2026, Shanghai time, made the clock."""
    instant = datetime(2026, 11, day, hour, minute, tzinfo=SH)
    clock.set_now(lambda: instant.astimezone(UTC))
    return instant


def sweep(db: Session) -> dict[str, int]:
    result = escalation.sweep(db)
    db.expire_all()  # the sweep wrote with SQL, behind the identity map
    return result


class Org:
    def __init__(self, db: Session, *, head: bool = True, top: bool = False) -> None:
        self.province = make_unit(db, "省公司")
        self.city = self.province if top else make_unit(db, "市分公司", self.province)
        self.head = make_staff(db, self.city, roles=("supervisor",)) if head else None
        self.agent = make_staff(db, self.city, roles=("agent",))
        self.customer = make_customer(db, self.city)
        self.customer.service_level = "4A"  # high: first response 60, next 240, resolution 960
        self.customer.account_manager_id = self.agent.id
        db.flush()

    def ticket(self, db: Session, priority: str = "high") -> Ticket:
        data = TicketCreate(
            customer_id=self.customer.id,
            category_code="technical_support",
            subject="专线中断",
            priority=priority,  # type: ignore[arg-type]
        )
        return tickets.open_ticket(db, SYSTEM, data)


def sla_events(db: Session, ticket: Ticket) -> list[dict[str, Any]]:
    rows = db.scalars(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "sla")
        .order_by(TicketEvent.id)
    )
    return [row.data for row in rows]


def sla_outbox(db: Session, ticket: Ticket) -> list[OutboxMessage]:
    return list(
        db.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.dedupe_key.startswith(f"sla:{ticket.id}:"))
            .order_by(OutboxMessage.id)
        )
    )


def iso(value: datetime | None) -> str:
    assert value is not None
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def test_warning_instant_is_a_share_of_the_target_in_business_time(db, settings):
    org = Org(db)
    at(24, 10)  # Tuesday; working hours 8:30–12:00 and 13:30–17:30
    t = org.ticket(db)
    assert t.first_response_due == datetime(2026, 11, 24, 11, tzinfo=SH)
    assert t.first_response_warn_at == datetime(2026, 11, 24, 10, 45, tzinfo=SH)  # 45 of 60
    # 720 of 960 business minutes: 360 on Tuesday, 210 + 150 on Wednesday. Calendar time
    # would say Wednesday 22:45, after hours.
    assert t.resolution_due == datetime(2026, 11, 26, 11, tzinfo=SH)
    assert t.resolution_warn_at == datetime(2026, 11, 25, 16, tzinfo=SH)
    use_settings(settings.model_copy(update={"sla_warn_share": 0.5}))
    assert org.ticket(db).first_response_warn_at == datetime(2026, 11, 24, 10, 30, tzinfo=SH)


def test_ladder_warn_breach_parent_each_exactly_once(db):
    org = Org(db)
    at(24, 10)
    t = org.ticket(db)
    at(24, 10, 44)
    assert sweep(db) == {"steps": 0}
    at(24, 10, 45)
    assert sweep(db) == {"steps": 1, "first_response.warn": 1}
    assert sweep(db) == {"steps": 0}
    at(24, 10, 59)
    assert sweep(db) == {"steps": 0}
    assert not t.breached_first_response
    at(24, 11)
    assert sweep(db) == {"steps": 1, "first_response.breach": 1}
    assert t.breached_first_response and not t.breached_resolution
    assert (t.first_response_escalation, t.resolution_escalation) == (2, 0)
    assert t.version == 1  # the sweep never makes a person's edit stale
    at(24, 12, 59)
    assert sweep(db) == {"steps": 0}
    at(24, 13)  # 120 minutes after the due time
    assert sweep(db) == {"steps": 1, "first_response.parent": 1}
    at(24, 17)
    assert sweep(db) == {"steps": 0}
    assert t.first_response_escalation == 3

    due = iso(t.first_response_due)
    assert sla_events(db, t) == [
        {"target": "first_response", "stage": s, "due": due, "recipient": r}
        for s, r in (
            ("warn", f"staff:{org.agent.id}"),
            ("breach", f"staff:{org.head.id}"),
            ("parent", f"unit:{org.province.id}"),
        )
    ]
    outbox = sla_outbox(db, t)
    assert [(m.topic, m.recipient, m.dedupe_key) for m in outbox] == [
        ("sla.warning", f"staff:{org.agent.id}", f"sla:{t.id}:first_response:warn"),
        ("sla.breach", f"staff:{org.head.id}", f"sla:{t.id}:first_response:breach"),
        ("sla.escalated", f"unit:{org.province.id}", f"sla:{t.id}:first_response:parent"),
    ]
    assert outbox[0].payload == {
        "ticket_id": t.id,
        "number": t.number,
        "subject": "专线中断",
        "target": "first_response",
        "stage": "warn",
        "due": due,
        "title": "First response due soon",
    }
    assert outbox[0].status == "pending" and outbox[0].attempts == 0
    set_locale("zh_CN")
    assert gettext(outbox[2].payload["title"]) == "首次响应超时，已上报上级单位"
    steps = db.scalars(
        select(EscalationStep).where(EscalationStep.ticket_id == t.id).order_by(EscalationStep.id)
    ).all()
    assert [(s.target, s.cycle, s.stage) for s in steps] == [
        ("first_response", 0, "warn"),
        ("first_response", 0, "breach"),
        ("first_response", 0, "parent"),
    ]
    # Resolution has its own ladder: warned on Wednesday 16:00, due Thursday 11:00.
    at(25, 16)
    assert sweep(db) == {"steps": 1, "resolution.warn": 1}
    at(26, 13)
    assert sweep(db) == {"steps": 2, "resolution.breach": 1, "resolution.parent": 1}
    assert t.breached_resolution
    assert len(sla_outbox(db, t)) == len(sla_events(db, t)) == 6


def test_a_late_sweep_skips_the_stale_warning_and_climbs_at_once(db):
    org = Org(db)
    at(24, 10)
    t = org.ticket(db)
    at(24, 13, 30)  # the worker was down: due at 11:00, parent due at 13:00
    assert sweep(db) == {"steps": 2, "first_response.breach": 1, "first_response.parent": 1}
    assert [e["stage"] for e in sla_events(db, t)] == ["breach", "parent"]


def test_the_step_row_is_the_proof_even_if_the_level_were_lost(db):
    org = Org(db)
    at(24, 10)
    t = org.ticket(db)
    at(24, 11)
    assert sweep(db) == {"steps": 1, "first_response.breach": 1}
    t.first_response_escalation = 0  # as if the level had been lost
    db.flush()
    assert sweep(db) == {"steps": 0}
    assert len(sla_events(db, t)) == len(sla_outbox(db, t)) == 1


def test_unit_head_placeholder_and_no_parent_above_the_top(db):
    org = Org(db, head=False, top=True)
    at(24, 10)
    t = org.ticket(db)
    at(24, 11)
    sweep(db)
    at(25, 11)
    sweep(db)
    [breach] = sla_outbox(db, t)
    assert breach.recipient == f"unit_head:{org.city.id}"
    assert [e["stage"] for e in sla_events(db, t)] == ["breach"]


def test_paused_tickets_wait_and_their_warning_moves_with_the_pause(db):
    org = Org(db)
    at(24, 10)
    t = org.ticket(db)
    at(24, 10, 30)
    tickets.change_state(db, SYSTEM, t, "pending", "waiting for the customer")
    db.flush()
    for instant in ((24, 10, 45), (24, 11), (24, 13), (25, 16), (27, 11)):
        at(*instant)
        assert sweep(db) == {"steps": 0}, instant
    at(30, 9)  # Monday: 30 business minutes of the first response were left, 15 to warn
    tickets.change_state(db, SYSTEM, t, "open", "customer back")
    db.flush()
    assert t.first_response_warn_at == datetime(2026, 11, 30, 9, 15, tzinfo=SH)
    assert t.first_response_due == datetime(2026, 11, 30, 9, 30, tzinfo=SH)
    at(30, 9, 14)
    assert sweep(db) == {"steps": 0}
    at(30, 9, 15)
    assert sweep(db) == {"steps": 1, "first_response.warn": 1}


def test_met_and_resolved_targets_stop(db):
    org = Org(db)
    at(24, 10)
    t = org.ticket(db)
    at(24, 10, 45)
    assert sweep(db)["steps"] == 1
    at(24, 10, 50)
    tickets.add_message(db, SYSTEM, t.id, MessageIn(body="已收到，正在处理"))
    db.flush()
    at(24, 11)
    assert sweep(db) == {"steps": 0}  # first response met in time
    at(24, 15)
    t = db.get(Ticket, t.id)
    tickets.change_state(db, SYSTEM, t, "resolved")
    db.flush()
    for instant in ((25, 16), (26, 11), (27, 11)):
        at(*instant)
        assert sweep(db) == {"steps": 0}
    assert [(e["target"], e["stage"]) for e in sla_events(db, t)] == [("first_response", "warn")]
    assert not t.breached_first_response and not t.breached_resolution


def test_each_wait_for_a_next_response_has_its_own_ladder(db):
    org = Org(db)
    at(24, 9)
    t = org.ticket(db)
    at(24, 9, 10)
    tickets.add_message(db, SYSTEM, t.id, MessageIn(body="您好，已受理"))
    db.flush()
    at(24, 9, 30)
    tickets.customer_reply(db, t, "customer", "还是不通")
    db.flush()
    # 240 business minutes from Tuesday 9:30: 150 to noon, 90 after lunch → 15:00.
    assert t.next_response_cycle == 1
    assert t.next_response_due == datetime(2026, 11, 24, 15, tzinfo=SH)
    assert t.next_response_warn_at == datetime(2026, 11, 24, 14, tzinfo=SH)  # 180 of 240
    at(24, 14)
    assert sweep(db) == {"steps": 1, "next_response.warn": 1}
    at(24, 17)
    assert sweep(db) == {"steps": 2, "next_response.breach": 1, "next_response.parent": 1}
    at(24, 17, 5)
    tickets.add_message(db, SYSTEM, t.id, MessageIn(body="已派工程师"))
    db.flush()
    assert t.next_response_due is None and t.next_response_warn_at is None
    at(25, 9)
    assert sweep(db) == {"steps": 0}
    tickets.customer_reply(db, t, "customer", "工程师没来")
    db.flush()
    assert t.next_response_cycle == 2
    # From Wednesday 9:00: warned at noon (180 of 240 business minutes), due at 14:30.
    assert t.next_response_warn_at == datetime(2026, 11, 25, 12, tzinfo=SH)
    at(25, 13, 30)
    assert sweep(db) == {"steps": 1, "next_response.warn": 1}
    at(25, 15, 30)
    assert sweep(db)["next_response.breach"] == 1
    keys = [m.dedupe_key for m in sla_outbox(db, t) if ":next_response" in m.dedupe_key]
    assert keys == [
        f"sla:{t.id}:next_response#1:warn",
        f"sla:{t.id}:next_response#1:breach",
        f"sla:{t.id}:next_response#1:parent",
        f"sla:{t.id}:next_response#2:warn",
        f"sla:{t.id}:next_response#2:breach",
    ]
    assert not t.breached_first_response  # answered in time; next response has no flag


def test_the_worker_runs_the_sweep(db):
    assert ("escalate", escalate.run) in worker.JOBS
    org = Org(db)
    at(24, 10)
    org.ticket(db)
    at(24, 11)
    assert escalate.run(db) == {"steps": 1, "first_response.breach": 1}


# --- two workers at once (PostgreSQL) -----------------------------------------------------


def _seed_due(session: Session, org_ids: dict[str, int], now: datetime, n: int) -> None:
    """n tickets per situation: first response to warn; resolution breached three hours
    ago (breach and parent); a next response just breached (breach only)."""
    base: dict[str, Any] = {
        "customer_id": org_ids["customer"],
        "channel": "api",
        "category_code": "other",
        "priority": "normal",
        "subject": "并发",
        "owning_unit_id": org_ids["city"],
        "handling_unit_id": org_ids["city"],
        "assignee_id": org_ids["agent"],
        "state": "open",
        "created_by": "test",
        "created_at": now - timedelta(hours=5),
        "resolution_due": now + timedelta(days=3),
        "resolution_warn_at": now + timedelta(days=2),
    }
    later = now + timedelta(minutes=10)
    rows = []
    for _ in range(n):
        rows.append(Ticket(**base, first_response_due=later, first_response_warn_at=now))
        rows.append(
            Ticket(
                **{
                    **base,
                    "resolution_due": now - timedelta(hours=3),
                    "resolution_warn_at": now - timedelta(hours=4),
                },
                first_response_at=now - timedelta(hours=4),
            )
        )
        rows.append(
            Ticket(
                **base,
                first_response_at=now - timedelta(hours=4),
                next_response_cycle=1,
                next_response_due=now - timedelta(minutes=1),
                next_response_warn_at=now - timedelta(minutes=30),
            )
        )
    session.add_all(rows)


def test_two_workers_at_once_escalate_and_notify_once(committed_engine, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; FOR UPDATE SKIP LOCKED is PostgreSQL's")
    factory = make_sessionmaker(committed_engine)
    now = datetime(2026, 11, 24, 2, tzinfo=UTC)
    clock.set_now(lambda: now)
    with unit_of_work(factory) as session:
        org = Org(session)
        ids = {"customer": org.customer.id, "city": org.city.id, "agent": org.agent.id}
    n = 150
    expected = {
        ("first_response", "warn"): n,
        ("resolution", "breach"): n,
        ("resolution", "parent"): n,
        ("next_response", "breach"): n,
    }
    for _round in range(3):  # fresh tickets each round: three chances to collide
        with unit_of_work(factory) as session:
            _seed_due(session, ids, now, n)
        barrier = threading.Barrier(2)
        results: list[Any] = []

        def run(barrier: threading.Barrier = barrier, results: list[Any] = results) -> None:
            try:
                barrier.wait(timeout=10)
                with unit_of_work(factory) as session:
                    results.append(escalate.run(session))
            except Exception as exc:  # surfaced below
                results.append(exc)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=60)
        assert len(results) == 2 and all(isinstance(r, dict) for r in results), results
        assert sum(r["steps"] for r in results) == sum(expected.values()), results

    with factory() as session:
        steps = Counter(
            session.execute(
                select(EscalationStep.ticket_id, EscalationStep.target, EscalationStep.stage)
            ).all()
        )
        events = Counter(
            (e.ticket_id, e.data["target"], e.data["stage"])
            for e in session.scalars(select(TicketEvent).where(TicketEvent.kind == "sla"))
        )
        outbox = Counter(
            (m.payload["ticket_id"], m.payload["target"], m.payload["stage"])
            for m in session.scalars(
                select(OutboxMessage).where(OutboxMessage.topic.startswith("sla."))
            )
        )
        assert set(steps.values()) == set(events.values()) == set(outbox.values()) == {1}
        assert steps.keys() == events.keys() == outbox.keys()
        per_kind = Counter((target, stage) for _, target, stage in steps)
        assert per_kind == {k: 3 * v for k, v in expected.items()}
        flagged = session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.breached_resolution)
        )
        assert flagged == 3 * n
