"""Filters of several values (state, priority, category, tier, service level) in the ticket
list API and in saved views; views saved with one value per filter stay readable."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from kefu import clock
from kefu.scope import SYSTEM
from kefu.tickets import queries, saved_views
from kefu.tickets import service as tickets
from kefu.tickets.models import Ticket, TicketView
from kefu.tickets.schemas import TicketCreate, TicketUpdate, ViewFilters
from tests.factories import make_customer
from tests.scope_matrix import build_org, check_scope, list_all

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def tuesday_morning():
    clock.set_now(lambda: datetime(2026, 11, 24, 10, tzinfo=SH).astimezone(UTC))


def open_ticket(db, customer, subject, priority="normal", category="technical_support"):
    data = TicketCreate(
        customer_id=customer.id, category_code=category, subject=subject, priority=priority
    )
    t = tickets.open_ticket(db, SYSTEM, data, channel="phone")
    db.commit()
    return t


def move(db, t, *states):
    for to in states:
        t = tickets.update_ticket(db, SYSTEM, t.id, TicketUpdate(version=t.version, state=to))
        db.commit()
    return t


def tiered(db, unit, tier, level):
    c = make_customer(db, unit)
    c.tier, c.service_level = tier, level
    db.commit()
    return c


@pytest.fixture
def world(db):
    org = build_org(db, roles=("supervisor",))
    a = tiered(db, org.county_x, "A", "5A")
    b = tiered(db, org.county_x, "B", "3A")
    c = tiered(db, org.county_y, "C", "1A")
    t = {
        "urgent_a": open_ticket(db, a, "甲紧急", "urgent", "fault_repair"),
        "high_b": open_ticket(db, b, "乙高", "high", "installation"),
        "low_c": open_ticket(db, c, "丙低", "low", "consultation"),
        "normal_a": open_ticket(db, a, "甲普通", "normal", "technical_support"),
    }
    t["high_b"] = move(db, t["high_b"], "pending")
    t["low_c"] = move(db, t["low_c"], "resolved")
    return org, t


def ids_of(client, url, h):
    return {x["id"] for x in list_all(client, url, h)}


def test_the_list_takes_several_values_per_filter(client, db, world):
    org, t = world
    h = org.headers["city_a"]
    ids = lambda url: ids_of(client, url, h)  # noqa: E731
    i = {k: v.id for k, v in t.items()}
    every = set(i.values())
    # One value: as before.
    assert ids("/api/v1/tickets?priority=urgent") == {i["urgent_a"]}
    assert ids("/api/v1/tickets?state=pending") == {i["high_b"]}
    # Several: any of them.
    assert ids("/api/v1/tickets?priority=urgent&priority=low") == {i["urgent_a"], i["low_c"]}
    assert ids("/api/v1/tickets?state=new&state=resolved") == {
        i["urgent_a"],
        i["normal_a"],
        i["low_c"],
    }
    assert ids("/api/v1/tickets?state=open_states") == every - {i["low_c"]}
    assert ids("/api/v1/tickets?state=open_states&state=resolved") == every
    assert ids("/api/v1/tickets?state=pending&state=closed") == {i["high_b"]}
    assert ids("/api/v1/tickets?category=fault_repair&category=consultation") == {
        i["urgent_a"],
        i["low_c"],
    }
    assert ids("/api/v1/tickets?tier=B&tier=C") == {i["high_b"], i["low_c"]}
    assert ids("/api/v1/tickets?service_level=5A&service_level=1A") == {
        i["urgent_a"],
        i["normal_a"],
        i["low_c"],
    }
    # Filters combine: (urgent or high) and (tier A or C).
    assert ids("/api/v1/tickets?priority=urgent&priority=high&tier=A&tier=C") == {i["urgent_a"]}
    # A bad value is named.
    r = client.get("/api/v1/tickets?priority=urgent&priority=someday", headers=h)
    assert r.status_code == 422
    assert any("priority" in str(e["field"]) for e in r.json()["errors"]), r.text


def test_a_view_of_several_values_and_parameters_that_win(client, db, world):
    org, t = world
    h = org.headers["city_a"]
    i = {k: v.id for k, v in t.items()}
    r = client.post(
        "/api/v1/ticket-views",
        headers=h,
        json={
            "name": "紧急或高",
            "filters": {"priority": ["urgent", "high"], "state": ["new", "pending"]},
        },
    )
    assert r.status_code == 201, r.text
    view = r.json()
    assert view["filters"]["priority"] == ["urgent", "high"]
    assert view["filters"]["state"] == ["new", "pending"]
    assert ids_of(client, f"/api/v1/tickets?view={view['id']}", h) == {
        i["urgent_a"],
        i["high_b"],
    }
    # A parameter given beside the view replaces that filter's values (all of them).
    url = f"/api/v1/tickets?view={view['id']}&priority=normal&priority=low"
    assert ids_of(client, url, h) == {i["normal_a"]}
    # One value in the body still works (a list of one), and old names stay.
    r = client.patch(
        f"/api/v1/ticket-views/{view['id']}",
        headers=h,
        json={"version": view["version"], "filters": {"priority": "low", "state": "resolved"}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["filters"]["priority"] == ["low"]
    assert ids_of(client, f"/api/v1/tickets?view={view['id']}", h) == {i["low_c"]}
    # Every bad value is named by its place.
    r = client.post(
        "/api/v1/ticket-views",
        headers=h,
        json={"name": "坏", "filters": {"category": ["fault_repair", "astrology", "tarot"]}},
    )
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["filters.category.1", "filters.category.2"]
    r = client.post(
        "/api/v1/ticket-views",
        headers=h,
        json={"name": "坏", "filters": {"tier": ["A", "Z"]}},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "filters.tier.1"
    assert db.scalars(select(TicketView).where(TicketView.name == "坏")).first() is None


def test_views_saved_with_one_value_per_filter_stay_readable(client, db, world):
    org, t = world
    h = org.headers["city_a"]
    at = clock.now()
    old = TicketView(
        name="旧视图",
        owner_id=org.people["city_a"].id,
        unit_id=None,
        # As views were stored before filters took several values.
        filters={"state": "open_states", "priority": "urgent", "tier": "A", "category": None},
        position=0,
        created_at=at,
        updated_at=at,
    )
    db.add(old)
    db.commit()
    r = client.get(f"/api/v1/ticket-views/{old.id}", headers=h)
    assert r.status_code == 200, r.text
    f = r.json()["filters"]
    assert f["state"] == ["open_states"] and f["priority"] == ["urgent"] and f["tier"] == ["A"]
    assert f["category"] is None
    assert ids_of(client, f"/api/v1/tickets?view={old.id}", h) == {t["urgent_a"].id}
    assert saved_views.filters_of(old) == ViewFilters(
        state=["open_states"], priority=["urgent"], tier=["A"]
    )
    # Saved again, it is written in the new form.
    r = client.patch(
        f"/api/v1/ticket-views/{old.id}", headers=h, json={"version": 1, "name": "旧视图改"}
    )
    assert r.status_code == 200, r.text
    db.expire_all()
    assert db.get(TicketView, old.id).filters["priority"] == "urgent"  # untouched filters
    r = client.patch(
        f"/api/v1/ticket-views/{old.id}",
        headers=h,
        json={"version": 2, "filters": r.json()["filters"]},
    )
    db.expire_all()
    assert db.get(TicketView, old.id).filters["priority"] == ["urgent"]


def test_several_values_and_the_open_states_in_the_query(db, world):
    _org, t = world
    viewer = SYSTEM
    got = lambda **kw: set(  # noqa: E731
        db.scalars(queries.tickets(db, viewer, **kw).with_only_columns(Ticket.id))
    )
    i = {k: v.id for k, v in t.items()}
    assert got(state=["open_states"]) == {i["urgent_a"], i["high_b"], i["normal_a"]}
    assert got(state="open_states") == {i["urgent_a"], i["high_b"], i["normal_a"]}
    assert got(state=["open_states", "pending"]) == {i["urgent_a"], i["high_b"], i["normal_a"]}
    assert got(state=["resolved", "open_states"]) == set(i.values())
    assert got(state=["resolved"], priority=["low", "urgent"]) == {i["low_c"]}
    assert got(tier=["A"], service_level=["5A", "3A"]) == {i["urgent_a"], i["normal_a"]}


def test_scope_matrix_through_a_view_of_several_values(client, db):
    org = build_org(db, roles=("supervisor",))
    records = {}
    for n, unit in enumerate(org.units.values()):
        priority = ("urgent", "high")[n % 2]
        t = open_ticket(db, make_customer(db, unit), f"单{n}", priority)
        records[t.id] = unit
    wide = client.post(
        "/api/v1/ticket-views",
        headers=org.headers["province"],
        json={
            "name": "全省紧急与高",
            "unit_id": org.province.id,
            "filters": {"state": ["new", "open"], "priority": ["urgent", "high"]},
        },
    ).json()
    check_scope(
        client,
        org,
        list_url=f"/api/v1/tickets?view={wide['id']}",
        detail_url=lambda i: f"/api/v1/tickets/{i}",
        records=records,
    )


# --- tag and custom field filters in saved views --------------------------------------------


def define(client, h, **body):
    r = client.post("/api/v1/ticket-fields", headers=h, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def with_fields(db, customer, subject, category, tags=(), **custom):
    data = TicketCreate(
        customer_id=customer.id,
        category_code=category,
        subject=subject,
        tags=list(tags),
        custom_fields=custom,
    )
    t = tickets.open_ticket(db, SYSTEM, data, channel="phone")
    db.commit()
    return t


@pytest.fixture
def fielded(client, db):
    org = build_org(db, roles=("supervisor",))
    admin = org.headers["admin"]
    define(client, admin, key="amount", label_zh="金额", label_en="Amount", type="number")
    define(
        client,
        admin,
        key="fault_kind",
        label_zh="故障类型",
        label_en="Kind of fault",
        type="choice",
        category_code="fault_repair",
        choices=[
            {"value": "line", "label_zh": "线路", "label_en": "Line"},
            {"value": "power", "label_zh": "电源", "label_en": "Power"},
        ],
    )
    x = make_customer(db, org.county_x)
    t = {
        "big_line": with_fields(
            db, x, "大额线路", "fault_repair", ["vip"], amount=500, fault_kind="line"
        ),
        "small_power": with_fields(
            db, x, "小额电源", "fault_repair", ["VIP", "夜间"], amount=20, fault_kind="power"
        ),
        "big_other": with_fields(db, x, "大额其他", "other", [], amount=900),
    }
    return org, t


def test_a_view_keeps_tag_and_field_filters(client, db, fielded):
    org, t = fielded
    h = org.headers["city_a"]
    i = {k: v.id for k, v in t.items()}
    r = client.post(
        "/api/v1/ticket-views",
        headers=h,
        json={"name": "VIP 大额", "filters": {"tag": "vip", "field": ["amount>=100"]}},
    )
    assert r.status_code == 201, r.text
    view = r.json()
    assert view["filters"]["tag"] == "vip" and view["filters"]["field"] == ["amount>=100"]
    assert ids_of(client, f"/api/v1/tickets?view={view['id']}", h) == {i["big_line"]}
    # Parameters win: another tag, other field filters (all of them replaced).
    url = f"/api/v1/tickets?view={view['id']}&tag=夜间"
    assert ids_of(client, url, h) == set()  # the view's field filter still holds
    url = f"/api/v1/tickets?view={view['id']}&tag=夜间&field=amount%3E%3D1"
    assert ids_of(client, url, h) == {i["small_power"]}
    url = f"/api/v1/tickets?view={view['id']}&field=fault_kind%3Dpower&field=amount%3C%3D50"
    assert ids_of(client, url, h) == {i["small_power"]}
    # Several field filters in a view: all must hold.
    r = client.patch(
        f"/api/v1/ticket-views/{view['id']}",
        headers=h,
        json={
            "version": view["version"],
            "filters": {"field": ["amount>=100", "amount<=600"], "state": None},
        },
    )
    assert r.status_code == 200, r.text
    assert ids_of(client, f"/api/v1/tickets?view={view['id']}", h) == {i["big_line"]}
    # Bad ones are named, each by its place; nothing is saved.
    r = client.post(
        "/api/v1/ticket-views",
        headers=h,
        json={
            "name": "坏",
            "filters": {"field": ["amount>=100", "amount>=lots", "nokey=1", "fault_kind>=line"]},
        },
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [
        "filters.field.1",
        "filters.field.2",
        "filters.field.3",
    ]
    r = client.post(
        "/api/v1/ticket-views", headers=h, json={"name": "坏", "filters": {"tag": "a;b"}}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "filters.tag"
    assert db.scalars(select(TicketView).where(TicketView.name == "坏")).first() is None


def test_scope_matrix_through_a_view_of_tag_and_field(client, db, fielded):
    org, _ = fielded
    records = {}
    for n, unit in enumerate(org.units.values()):
        t = with_fields(db, make_customer(db, unit), f"单{n}", "other", ["巡检"], amount=n + 1)
        records[t.id] = unit
    wide = client.post(
        "/api/v1/ticket-views",
        headers=org.headers["province"],
        json={
            "name": "全省巡检",
            "unit_id": org.province.id,
            "filters": {"tag": "巡检", "field": ["amount>=1"]},
        },
    ).json()
    check_scope(
        client,
        org,
        list_url=f"/api/v1/tickets?view={wide['id']}",
        detail_url=lambda i: f"/api/v1/tickets/{i}",
        records=records,
    )
