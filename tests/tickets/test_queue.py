"""The agent queue: a unit's open tickets by nearest due time, page by page.

On PostgreSQL a page is read unit by unit of the subtree (kefu.scope.page_candidates), so
these tests pin down that the shape changes nothing of what is listed: the same tickets,
in the same order, across pages, for viewers inside, above and beside the unit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event, update

from kefu.tickets.models import Ticket
from tests.factories import make_customer, make_staff, make_unit, token_for

T0 = datetime(2026, 12, 1, 8, tzinfo=UTC)


def _open(client, h, customer_id: int) -> int:
    r = client.post(
        "/api/v1/tickets",
        headers=h,
        json={"customer_id": customer_id, "category_code": "consultation", "subject": "咨询"},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _queue(client, h, unit_id: int | None, limit: int = 2) -> list[int]:
    url = "/api/v1/tickets?open=true&sort=due" + (f"&unit_id={unit_id}" if unit_id else "")
    got: list[int] = []
    cursor = None
    while True:
        r = client.get(url + f"&limit={limit}" + (f"&cursor={cursor}" if cursor else ""), headers=h)
        assert r.status_code == 200, r.text
        got += [t["id"] for t in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            return got


def test_unit_queue_lists_the_same_tickets_for_every_viewer(client, db, engine):
    province = make_unit(db, "省")
    city = make_unit(db, "市", province)
    x = make_unit(db, "甲县", city)
    town = make_unit(db, "甲镇", x)
    y = make_unit(db, "乙县", city)
    admin_h = token_for(db, make_staff(db, province, roles=("admin",)))
    agent_x = make_staff(db, x)
    agent_x_h = token_for(db, agent_x)
    agent_y_h = token_for(db, make_staff(db, y))
    city_h = token_for(db, make_staff(db, city, roles=("supervisor",)))
    customers = {u.id: make_customer(db, u) for u in (x, town, y)}
    db.commit()
    # (owning unit, handling unit, state, assigned to agent_x, minutes to due)
    plan = [
        (x.id, x.id, "open", False, 50),
        (town.id, town.id, "new", False, 10),
        (x.id, x.id, "pending", False, 30),
        (town.id, town.id, "on_hold", False, 70),
        (y.id, x.id, "open", False, 20),  # linked service: handled in X
        (x.id, y.id, "open", False, 60),  # linked service: owned by X
        (y.id, y.id, "open", True, 40),  # assigned to X's agent, but outside X
        (y.id, y.id, "open", False, 5),
        (x.id, x.id, "resolved", False, 1),  # not open
        (town.id, town.id, "closed", False, 2),
    ]
    ids = []
    for owning, handling, state, mine, minutes in plan:
        tid = _open(client, admin_h, customers[owning].id)
        db.execute(
            update(Ticket)
            .where(Ticket.id == tid)
            .values(
                handling_unit_id=handling,
                state=state,
                assignee_id=agent_x.id if mine else None,
                resolution_due=T0 + timedelta(minutes=minutes),
            )
        )
        ids.append(tid)
    db.commit()
    by_due = [ids[i] for _, i in sorted((p[4], i) for i, p in enumerate(plan))]
    in_x = {ids[i] for i in (0, 1, 2, 3, 4, 5)}
    expected = [t for t in by_due if t in in_x]

    statements: list[str] = []

    def seen(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert _queue(client, agent_x_h, x.id) == expected
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    if engine.dialect.name == "postgresql":  # read unit by unit, each through its index
        assert any("LATERAL" in s for s in statements)
    assert _queue(client, admin_h, x.id) == expected
    assert _queue(client, city_h, x.id) == expected
    assert _queue(client, agent_x_h, x.id, limit=50) == expected
    # The town alone: its own two.
    assert _queue(client, agent_x_h, town.id) == [ids[1], ids[3]]
    # Beside the unit: Y's agent sees only what Y owns or handles of it (the linked ones).
    assert _queue(client, agent_y_h, x.id) == [ids[4], ids[5]]
    # Without a unit: everything the viewer sees, their assigned ticket in Y included.
    assert _queue(client, agent_x_h, None) == [t for t in by_due if t in in_x | {ids[6]}]
