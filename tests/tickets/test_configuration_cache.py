"""The configuration a web process keeps between intakes (kefu.cache.configuration): kept
while the configuration stamp is the same, read afresh after any write to a configuration
table — by this process, another one, or plain SQL — and never poisoned by a rolled-back
write."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, inspect, select, text

from kefu import cache
from kefu.api.v1.ticket_intake import Answer, run_group
from kefu.db import make_sessionmaker, unit_of_work
from kefu.errors import Invalid
from kefu.tickets.models import Category, RoutingRule, TicketField
from tests.factories import make_customer, make_staff, make_unit, token_for
from tests.tickets.test_intake_groups import bearer, body, request

CONFIG_TABLES = cache.CONFIG_TABLES


@pytest.fixture
def desk(committed_engine):
    """A unit with an agent, a customer and a token, committed."""
    factory = make_sessionmaker(committed_engine)
    with unit_of_work(factory) as db:
        unit = make_unit(db, "城北")
        agent = make_staff(db, unit)
        customer_id = make_customer(db, unit).id
        token = bearer(token_for(db, agent))
    return factory, token, customer_id


def intake(factory, loop, token: str, customer_id: int, **kw: Any) -> Any:
    with unit_of_work(factory) as db:
        (result,) = run_group(db, [request(loop, token, body(customer_id, **kw))])
    return result


def stamp(factory) -> str:
    with unit_of_work(factory) as db:
        return db.scalar(text("SELECT stamp FROM config_stamp"))  # type: ignore[no-any-return]


@pytest.fixture
def loop():
    import asyncio

    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_a_later_intake_reads_only_the_stamp_of_the_configuration(desk, loop, committed_engine):
    factory, token, customer_id = desk
    assert isinstance(intake(factory, loop, token, customer_id), Answer)
    seen: list[str] = []

    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(committed_engine, "before_cursor_execute", record)
    try:
        assert isinstance(intake(factory, loop, token, customer_id), Answer)
    finally:
        event.remove(committed_engine, "before_cursor_execute", record)
    reads = " ".join(s for s in seen if s.lstrip().upper().startswith("SELECT"))
    for table in ("ticket_categories", "ticket_fields", "routing_rules", "calendars"):
        assert f"FROM {table}" not in reads, table
    assert reads.count("FROM config_stamp") == 1


@pytest.mark.parametrize("table", CONFIG_TABLES)
def test_every_write_to_a_configuration_table_renews_the_stamp(desk, table):
    factory, _, _ = desk
    with unit_of_work(factory) as db:
        unit_id = db.scalar(text("SELECT max(id) FROM units"))
        # A row in every table, then a change that rewrites it with the same values.
        db.execute(
            text("INSERT INTO unit_functions (unit_id, function) VALUES (:u, 'technical')"),
            {"u": unit_id},
        )
        db.add(
            RoutingRule(
                kind="category_function", category_code="installation", function="technical"
            )
        )
        db.add(TicketField(key="circuit", label_zh="电路", label_en="Circuit", type="text"))
    before = stamp(factory)
    with unit_of_work(factory) as db:
        db.execute(text(f"UPDATE {table} SET {_column(table)} = {_column(table)}"))
    after = stamp(factory)
    assert after != before
    with unit_of_work(factory) as db:  # a read renews nothing
        db.execute(text(f"SELECT * FROM {table}")).all()
    assert stamp(factory) == after


def _column(table: str) -> str:
    return {"ticket_categories": "name_zh", "unit_functions": "function"}.get(table, "id")


def test_a_change_made_elsewhere_is_used_by_the_next_intake(desk, loop, committed_engine):
    factory, token, customer_id = desk
    assert isinstance(intake(factory, loop, token, customer_id), Answer)  # kept now
    # Another process (plain SQL on its own connection) retires the category.
    with committed_engine.begin() as conn:
        conn.execute(
            text("UPDATE ticket_categories SET is_active = :no WHERE code = 'technical_support'"),
            {"no": False},
        )
    refused = intake(factory, loop, token, customer_id)
    assert isinstance(refused, Invalid)
    assert [e.field for e in refused.errors] == ["category_code"]
    with committed_engine.begin() as conn:
        conn.execute(
            text("UPDATE ticket_categories SET is_active = :yes WHERE code = 'technical_support'"),
            {"yes": True},
        )
    assert isinstance(intake(factory, loop, token, customer_id), Answer)


def test_a_rolled_back_change_is_never_served(desk, loop):
    factory, token, customer_id = desk
    assert isinstance(intake(factory, loop, token, customer_id), Answer)
    db = factory()
    try:
        category = db.scalars(select(Category).where(Category.code == "technical_support")).one()
        category.is_active = False
        db.flush()
        # Inside the changing transaction the change counts (and is kept under its stamp).
        (refused,) = run_group(db, [request(loop, token, body(customer_id))])
        assert isinstance(refused, Invalid)
        db.rollback()
    finally:
        db.close()
    assert isinstance(intake(factory, loop, token, customer_id), Answer)


def test_kept_rows_belong_to_no_session(desk, loop):
    factory, token, customer_id = desk
    intake(factory, loop, token, customer_id)
    kept = [
        value
        for values in list(cache._CONFIG._data.values())
        for value in values.values()
        if isinstance(value, dict) and value and isinstance(next(iter(value.values())), Category)
    ]
    assert kept, "the categories are kept"
    assert all(inspect(c).session is None for c in kept[0].values())
