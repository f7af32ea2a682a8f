"""Group commit of the ticket intake (kefu.api.v1.ticket_intake): requests that arrive
together are checked one by one and written together; a bad one costs the others nothing."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, inspect, select, update

from kefu import clock
from kefu.api.v1 import ticket_intake
from kefu.api.v1.ticket_intake import Answer, IntakeQueue, Request, run_group
from kefu.audit.models import AuditEntry
from kefu.auth import service as auth
from kefu.auth.models import ApiToken
from kefu.db import make_sessionmaker, unit_of_work
from kefu.errors import DomainError, Invalid, Unauthorized
from kefu.idempotency import service as idem
from kefu.idempotency.models import IdempotencyKey
from kefu.notifications.models import OutboxMessage
from kefu.tickets import service as tickets
from kefu.tickets.models import Ticket, TicketEvent
from kefu.tickets.schemas import TicketCreate
from tests.factories import make_customer, make_staff, make_unit, token_for

NOW = datetime(2026, 11, 24, 2, tzinfo=UTC)  # Tuesday 10:00 in Shanghai


@pytest.fixture(autouse=True)
def tuesday_morning():
    clock.set_now(lambda: NOW)


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def body(customer_id: int, **kw: Any) -> TicketCreate:
    return TicketCreate.model_validate(
        {
            "customer_id": customer_id,
            "category_code": "technical_support",
            "subject": "专线中断",
            "priority": "normal",
            **kw,
        }
    )


def request(loop, token: str, data: TicketCreate, key: str | None = None) -> Request:
    return Request(
        token=token,
        body=data,
        key=key,
        endpoint="POST /api/v1/tickets",
        location="/api/v1/tickets",
        context={"request_id": "req", "remote_addr": "127.0.0.1"},
        loop=loop,
        future=loop.create_future(),
    )


def bearer(headers: dict[str, str]) -> str:
    return headers["Authorization"].split(" ", 1)[1]


def count(db, model, *where) -> int:
    return db.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_a_group_answers_each_request_on_its_own(db, loop):
    unit, elsewhere = make_unit(db, "城东"), make_unit(db, "城西")
    agents = [make_staff(db, unit) for _ in range(2)]
    mine, theirs = make_customer(db, unit), make_customer(db, elsewhere)
    token = bearer(token_for(db, agents[0]))
    group = [
        request(loop, token, body(mine.id), key="k1"),  # 0: written
        request(loop, token, body(999_999)),  # 1: no such customer
        request(loop, "not-a-token", body(mine.id)),  # 2: unknown token
        request(loop, token, body(mine.id), key="k1"),  # 3: a retry racing 0
        request(loop, token, body(mine.id, priority="urgent")),  # 4: written
        request(loop, token, body(theirs.id)),  # 5: a customer out of scope
        request(loop, token, body(mine.id, subject="<script>x</script>"), key="k2"),  # 6
    ]
    out = run_group(db, group)

    assert isinstance(out[0], Answer) and out[0].status == 201
    assert out[0].headers["Idempotent-Replayed"] == "false"
    assert isinstance(out[1], Invalid) and out[1].errors[0].field == "customer_id"
    assert isinstance(out[2], Unauthorized)
    assert out[3] is None  # answered after the commit, by replaying 0
    assert isinstance(out[4], Answer) and "Idempotent-Replayed" not in out[4].headers
    assert isinstance(out[5], Invalid) and out[5].errors[0].field == "customer_id"
    assert isinstance(out[6], Invalid) and out[6].errors[0].field == "subject"

    ids = [out[0].body["id"], out[4].body["id"]]
    assert out[0].headers["Location"] == f"/api/v1/tickets/{ids[0]}"
    # Exactly the two good tickets, each with everything the intake writes beside it.
    assert count(db, Ticket) == 2
    for ticket_id in ids:
        kinds = db.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket_id))
        assert sorted(kinds) == ["assign", "created", "route"]
        assert (
            count(
                db,
                AuditEntry,
                AuditEntry.object_type == "ticket",
                AuditEntry.object_id == str(ticket_id),
            )
            == 1
        )
        assert count(db, OutboxMessage, OutboxMessage.dedupe_key == f"ticket.created:{ticket_id}")
    audit = db.scalars(select(AuditEntry).where(AuditEntry.action == "ticket.create")).first()
    assert audit is not None and audit.request_id == "req" and audit.remote_addr == "127.0.0.1"
    assert count(db, IdempotencyKey) == 1  # k2 was refused: nothing kept for it

    # The retry (3) afterwards, alone: the first answer; another body under k1: refused.
    (again,) = run_group(db, [group[3]])
    assert isinstance(again, Answer) and again.body == out[0].body
    assert again.headers["Idempotent-Replayed"] == "true"
    (other,) = run_group(db, [request(loop, token, body(mine.id, subject="另一件事"), "k1")])
    assert isinstance(other, Invalid) and other.errors[0].field == "Idempotency-Key"
    assert count(db, Ticket) == 2


def test_a_group_spreads_work_as_it_assigns(db, loop):
    """The least-loaded agent is read once per group and the group's own assignments
    count: six tickets go two to each of three agents, not six to the first."""
    unit = make_unit(db, "城北")
    agents = [make_staff(db, unit) for _ in range(3)]
    customer = make_customer(db, unit)
    token = bearer(token_for(db, agents[0]))
    out = run_group(db, [request(loop, token, body(customer.id)) for _ in range(6)])
    assert all(isinstance(a, Answer) for a in out)
    loads = Counter(db.scalars(select(Ticket.assignee_id)))
    assert sorted(loads.values()) == [2, 2, 2]
    assert set(loads) == {a.id for a in agents}


def test_concurrent_requests_over_http(app, db):
    """Many requests at once through the ASGI app: every one answered once, retries
    racing their first try answered with the same ticket, nothing written twice."""
    unit = make_unit(db, "城南")
    agent = make_staff(db, unit)
    customers = [make_customer(db, unit) for _ in range(3)]
    headers = token_for(db, agent)

    async def post(client: httpx.AsyncClient, i: int, key: str) -> httpx.Response:
        return await client.post(
            "/api/v1/tickets",
            json=body(customers[i % 3].id, subject=f"第{key}件").model_dump(mode="json"),
            headers={**headers, "Idempotency-Key": key},
        )

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kefu") as client:
            keys = [f"k{i}" for i in range(12)] + ["k3", "k7"]  # two retries racing
            return await asyncio.gather(*(post(client, i, k) for i, k in enumerate(keys)))

    answers = asyncio.run(main())
    assert [r.status_code for r in answers] == [201] * 14
    by_key: dict[str, set[int]] = {}
    for r in answers:
        key = r.request.headers["Idempotency-Key"]
        by_key.setdefault(key, set()).add(r.json()["id"])
    assert all(len(ids) == 1 for ids in by_key.values())
    assert len({i for ids in by_key.values() for i in ids}) == 12
    replayed = [r.headers["Idempotent-Replayed"] for r in answers]
    assert replayed.count("true") == 2
    db.expire_all()
    assert count(db, Ticket) == 12


def test_a_bad_request_gets_a_problem_in_the_callers_language(client, db):
    unit = make_unit(db, "城中")
    staff = make_staff(db, unit, locale="en")
    headers = token_for(db, staff)
    r = client.post("/api/v1/tickets", headers=headers, json=body(999_999).model_dump())
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"] == [{"field": "customer_id", "message": "No such customer."}]
    r = client.post("/api/v1/tickets", headers={"Authorization": "Bearer nope"}, json={})
    assert r.status_code in (401, 422)  # the body is checked first, by FastAPI
    r = client.post(
        "/api/v1/tickets", headers={"Authorization": "Bearer nope"}, json=body(1).model_dump()
    )
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"


def test_a_key_another_process_takes_meanwhile_is_replayed_after_the_commit(
    committed_engine, settings, loop, monkeypatch
):
    """Another process stores a key of this group just before the group takes its keys:
    that request is not run again but answered with the other process's ticket; the rest
    of the group is written as usual."""
    if committed_engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: no other process can write meanwhile")
    factory = make_sessionmaker(committed_engine)
    with unit_of_work(factory) as db:
        unit = make_unit(db, "城郊")
        agent = make_staff(db, unit)
        customer_id = make_customer(db, unit).id
        token = bearer(token_for(db, agent))
        # Used just now: neither transaction touches the token's row (else the second
        # would wait for the first, which this test runs in the same thread).
        db.execute(update(ApiToken).values(last_used_at=NOW))
    raced = request(loop, token, body(customer_id), key="raced")
    other = request(loop, token, body(customer_id, subject="另一张"), key="other")
    real_claim, real_open = idem.claim_many, ticket_intake.tickets.open_tickets
    winner: list[int] = []
    opened: list[int] = []

    def claim_many(session, principal, endpoint, hashes):
        if not winner:  # meanwhile, another process takes "raced" and commits
            winner.append(0)
            with unit_of_work(factory) as elsewhere:
                (first,) = run_group(elsewhere, [request(loop, token, body(customer_id), "raced")])
            assert isinstance(first, Answer)
            winner[0] = first.body["id"]
        return real_claim(session, principal, endpoint, hashes)

    def open_tickets(session, intakes):
        opened.append(len(intakes))
        return real_open(session, intakes)

    monkeypatch.setattr(idem, "claim_many", claim_many)
    monkeypatch.setattr(ticket_intake.tickets, "open_tickets", open_tickets)
    results = IntakeQueue(factory)._run([raced, other])

    # The competitor's own run, then the group with "other" alone (the raced one replays).
    assert opened == [1, 1]
    assert isinstance(results[0], Answer) and results[0].body["id"] == winner[0]
    assert results[0].headers["Idempotent-Replayed"] == "true"
    assert isinstance(results[1], Answer) and results[1].status == 201
    with unit_of_work(factory) as db:
        assert count(db, Ticket, Ticket.customer_id == customer_id) == 2
        assert count(db, IdempotencyKey) == 2
        assert count(db, IdempotencyKey, IdempotencyKey.status_code != 201) == 0


def test_a_refused_request_lets_its_key_go(db, loop):
    """A key is taken before the work and let go when the request is refused: a corrected
    retry with the same key is then served."""
    unit = make_unit(db, "城关")
    token = bearer(token_for(db, make_staff(db, unit)))
    customer_id = make_customer(db, unit).id
    (refused,) = run_group(db, [request(loop, token, body(customer_id, subject="<b>x</b>"), "k")])
    assert isinstance(refused, Invalid)
    assert count(db, IdempotencyKey) == 0
    (served,) = run_group(db, [request(loop, token, body(customer_id), "k")])
    assert isinstance(served, Answer) and served.status == 201


def test_an_unexpected_failure_is_that_requests_answer_alone(db, session_factory, loop):
    """A request whose processing raises something unexpected fails its group; run again
    alone, it gets that error as its answer and the others of the group are written."""
    unit = make_unit(db, "城乡")
    token = bearer(token_for(db, make_staff(db, unit)))
    customer_id = make_customer(db, unit).id
    db.commit()
    bad = request(loop, token, body(customer_id))
    bad.body = None  # type: ignore[assignment]
    good = request(loop, token, body(customer_id))
    results = IntakeQueue(session_factory)._run([bad, good])
    assert isinstance(results[0], BaseException) and not isinstance(results[0], DomainError)
    assert isinstance(results[1], Answer) and results[1].status == 201


def test_tickets_written_together_are_stored_and_kept_as_a_flush_would(db, loop):
    """The group's tickets go in with ids drawn first (COPY on PostgreSQL): what the caller
    holds is what is stored, defaults included, and it stays a normal persistent object."""
    unit = make_unit(db, "城南")
    agent = make_staff(db, unit)
    customer_id = make_customer(db, unit).id
    who = auth.token_viewer(db, bearer(token_for(db, agent)))
    assert who is not None
    opened = tickets.open_tickets(
        db,
        [tickets.Intake(who, body(customer_id, subject=f"第{i}张"), "phone") for i in range(3)],
    )
    assert all(isinstance(t, Ticket) for t in opened)
    assert len({t.id for t in opened}) == 3
    columns = [c.key for c in inspect(Ticket).column_attrs]
    held = [{k: getattr(t, k) for k in columns} for t in opened]
    assert all(inspect(t).persistent and not db.is_modified(t) for t in opened)
    db.expire_all()
    stored = [{k: getattr(db.get(Ticket, h["id"]), k) for k in columns} for h in held]
    assert stored == held
    assert held[0]["version"] == 1 and held[0]["state"] == "new"
    first = db.get(Ticket, held[0]["id"])
    first.priority = "high"
    db.flush()  # an ordinary update of a ticket written so, versioned as any other
    assert db.scalar(select(Ticket.version).where(Ticket.id == first.id)) == 2


def test_the_lean_route_serves_good_requests_and_hands_the_rest_to_the_documented_one(
    client, db, monkeypatch
):
    """A well-formed intake is served without FastAPI's per-request machinery; anything else
    (a field missing or wrong, not JSON, another content type) gets the documented route's
    usual problem, naming the field, in the caller's language."""
    from kefu.api.v1 import tickets as tickets_api

    unit = make_unit(db, "城外")
    headers = token_for(db, make_staff(db, unit, locale="en"))
    customer_id = make_customer(db, unit).id
    handed: list[str] = []
    documented = tickets_api._lean_intake.documented
    real_handle = documented.handle

    async def handle(scope, receive, send):  # type: ignore[no-untyped-def]
        handed.append(scope["path"])
        await real_handle(scope, receive, send)

    monkeypatch.setattr(documented, "handle", handle)
    good = client.post(
        "/api/v1/tickets",
        headers={**headers, "Idempotency-Key": "lean-1"},
        json=body(customer_id).model_dump(),
    )
    assert good.status_code == 201 and good.headers["Idempotent-Replayed"] == "false"
    assert good.headers["Location"].endswith(f"/tickets/{good.json()['id']}")
    assert handed == []
    missing = client.post(
        "/api/v1/tickets", headers=headers, json={"customer_id": customer_id, "priority": "x"}
    )
    assert missing.status_code == 422
    assert missing.headers["content-type"].startswith("application/problem+json")
    fields = {e["field"] for e in missing.json()["errors"]}
    assert {"category_code", "subject", "priority"} <= fields
    not_json = client.post(
        "/api/v1/tickets",
        headers={**headers, "Content-Type": "application/json"},
        content=b"{not json",
    )
    assert not_json.status_code == 422
    form = client.post("/api/v1/tickets", headers=headers, data={"subject": "x"})
    assert form.status_code == 422
    assert len(handed) == 3
    # The OpenAPI document still describes the endpoint, once.
    spec = client.get("/api/v1/openapi.json").json()
    assert spec["paths"]["/tickets"]["post"]["summary"].startswith("Open a ticket")
