"""/api/v1/calendars: scope, permissions, bad input, the month view, the holiday-data
warning, and that a calendar change moves no due time of an existing ticket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from kefu import clock
from kefu.audit.models import AuditEntry
from kefu.sla.models import BusinessCalendar
from tests.factories import make_customer, make_staff, make_unit, token_for
from tests.scope_matrix import build_org, check_scope

SH = ZoneInfo("Asia/Shanghai")
TUESDAY_10 = datetime(2026, 11, 24, 10, tzinfo=SH)
WEEK = {str(d): [["09:00", "12:00"], ["13:00", "18:00"]] for d in range(5)}


@pytest.fixture(autouse=True)
def tuesday_morning():
    clock.set_now(lambda: TUESDAY_10.astimezone(UTC))


def create(client, h, **kw):
    body = {"name": "华东日历", "hours": WEEK, **kw}
    r = client.post("/api/v1/calendars", headers=h, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def default_id(db) -> int:
    return db.scalar(select(BusinessCalendar.id).where(BusinessCalendar.is_default.is_(True)))


def fields(r) -> dict[str, str]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return {e["field"]: e["message"] for e in r.json()["errors"]}


def test_scope_matrix_calendars(client, db):
    org = build_org(db)
    admin = org.headers["admin"]
    records = {}
    by_unit = {}
    for key, unit in org.units.items():
        cal = create(client, admin, name=f"{key} 日历")
        r = client.put(
            f"/api/v1/calendars/units/{unit.id}", headers=admin, json={"calendar_id": cal["id"]}
        )
        assert r.status_code == 200, r.text
        records[cal["id"]] = unit
        by_unit[unit.id] = cal["id"]
    unassigned = create(client, admin, name="无人使用")["id"]
    records[unassigned] = None  # only admins see a calendar nobody uses
    records[default_id(db)] = org.province  # everyone sees the default (extra_visible below)

    def above(key: str) -> set[int]:
        unit = org.units[key]
        ids = [int(p) for p in unit.path.strip("/").split("/")[:-1]]
        return {by_unit[i] for i in ids} | {default_id(db)}

    class Nowhere:
        id = -1

    check_scope(
        client,
        org,
        list_url="/api/v1/calendars",
        detail_url=lambda i: f"/api/v1/calendars/{i}",
        records={k: v or Nowhere() for k, v in records.items()},  # type: ignore[misc]
        extra_visible=above,
        write=("PATCH", {"name": "越界"}),
    )
    # The unit's calendar: 404 outside the subtree, for reads and assignments alike.
    x = org.headers["county_x"]
    z_unit = org.county_z.id
    assert client.get(f"/api/v1/calendars/units/{z_unit}", headers=x).status_code == 404
    r = client.put(f"/api/v1/calendars/units/{z_unit}", headers=x, json={"calendar_id": None})
    assert r.status_code == 404
    mine = client.get(f"/api/v1/calendars/units/{org.county_x.id}", headers=x).json()
    assert mine["id"] == by_unit[org.county_x.id] and mine["inherited_from"] == org.county_x.id
    # Overrides and the month view of an unseen calendar: 404.
    z_cal = by_unit[z_unit]
    assert client.get(f"/api/v1/calendars/{z_cal}/overrides", headers=x).status_code == 404
    days = client.get(f"/api/v1/calendars/{z_cal}/days", headers=x, params={"month": "2026-10"})
    assert days.status_code == 404
    r = client.post(f"/api/v1/calendars/{z_cal}/overrides", headers=x, json={"day": "2026-12-01"})
    assert r.status_code == 404
    r = client.delete(f"/api/v1/calendars/{z_cal}/overrides/2026-12-01", headers=x)
    assert r.status_code == 404
    # The holiday-data warning lists only calendars the caller sees (all of these lack 2027).
    warned = {
        w["calendar_id"] for w in client.get("/api/v1/calendars/holiday-data", headers=x).json()
    }
    assert warned == above("county_x") | {by_unit[org.county_x.id]}
    everything = client.get("/api/v1/calendars/holiday-data", headers=admin).json()
    assert {w["calendar_id"] for w in everything} == set(by_unit.values()) | {default_id(db)}


def test_create_is_idempotent_located_and_audited(client, db):
    unit = make_unit(db, "省")
    h = token_for(db, make_staff(db, unit, roles=("admin",)))
    body = {"name": "美国日历", "country": "us", "timezone": "America/New_York", "hours": WEEK}
    key = {"Idempotency-Key": "cal-1"}
    first = client.post("/api/v1/calendars", headers={**h, **key}, json=body)
    assert first.status_code == 201
    assert first.headers["Location"].endswith(f"/calendars/{first.json()['id']}")
    again = client.post("/api/v1/calendars", headers={**h, **key}, json=body)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["country"] == "US" and first.json()["version"] == 1
    count = db.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "calendar.create")
    )
    assert count == 1
    cal = first.json()["id"]
    r = client.patch(f"/api/v1/calendars/{cal}", headers=h, json={"version": 1, "name": "纽约"})
    assert r.status_code == 200 and r.json()["version"] == 2
    stale = client.patch(f"/api/v1/calendars/{cal}", headers=h, json={"version": 1, "name": "x"})
    assert stale.status_code == 409


def test_bad_input_names_the_field(client, db):
    unit = make_unit(db, "省")
    h = token_for(db, make_staff(db, unit, roles=("admin",)))
    overlapping = {"0": [["08:00", "12:00"], ["11:30", "13:00"]]}
    r = client.post("/api/v1/calendars", headers=h, json={"name": "a", "hours": overlapping})
    assert "hours.0.1" in fields(r)
    backwards = {"2": [["17:00", "09:00"]]}
    r = client.post("/api/v1/calendars", headers=h, json={"name": "a", "hours": backwards})
    assert "hours.2.0" in fields(r)
    bad_time = {"1": [["8h", "25:00"]]}
    r = client.post("/api/v1/calendars", headers=h, json={"name": "a", "hours": bad_time})
    assert "hours.1.0" in fields(r)
    r = client.post(
        "/api/v1/calendars", headers=h, json={"name": "a", "hours": WEEK, "timezone": "Mars/Base"}
    )
    assert "timezone" in fields(r)
    r = client.post(
        "/api/v1/calendars", headers=h, json={"name": "a", "hours": WEEK, "country": "XX"}
    )
    assert "country" in fields(r)
    r = client.post("/api/v1/calendars", headers=h, json={"name": "a", "hours": {"7": []}})
    assert any(f.startswith("hours") for f in fields(r))
    cal = create(client, h)["id"]
    r = client.patch(f"/api/v1/calendars/{cal}", headers=h, json={"hours": overlapping})
    assert "hours.0.1" in fields(r)
    far = client.post(f"/api/v1/calendars/{cal}/overrides", headers=h, json={"day": "2031-01-01"})
    assert "day" in fields(far)
    old = client.post(f"/api/v1/calendars/{cal}/overrides", headers=h, json={"day": "2020-01-01"})
    assert "day" in fields(old)
    r = client.post(
        f"/api/v1/calendars/{cal}/overrides",
        headers=h,
        json={"day": "2026-12-05", "hours": [["10:00", "09:00"]]},
    )
    assert "hours.0" in fields(r)
    r = client.get(f"/api/v1/calendars/{cal}/days", headers=h, params={"month": "2026-13"})
    assert "month" in fields(r)
    # Nothing of the refused input was written.
    assert client.get(f"/api/v1/calendars/{cal}", headers=h).json()["version"] == 1


def test_who_may_change_what(client, db):
    org = build_org(db)
    admin, city_a, county_x = org.headers["admin"], org.headers["city_a"], org.headers["county_x"]
    shared = create(client, admin, name="共享")["id"]
    for unit in (org.county_x, org.county_z):
        client.put(
            f"/api/v1/calendars/units/{unit.id}", headers=admin, json={"calendar_id": shared}
        )
    own = create(client, admin, name="甲市自用")["id"]
    client.put(f"/api/v1/calendars/units/{org.city_a.id}", headers=admin, json={"calendar_id": own})
    # Only admins create and edit calendars.
    r = client.post("/api/v1/calendars", headers=city_a, json={"name": "x", "hours": WEEK})
    assert r.status_code == 403
    assert (
        client.patch(f"/api/v1/calendars/{own}", headers=city_a, json={"name": "x"}).status_code
        == 403
    )
    # A manager assigns within their subtree, a calendar they see.
    r = client.put(
        f"/api/v1/calendars/units/{org.county_y.id}", headers=city_a, json={"calendar_id": own}
    )
    assert r.status_code == 200 and r.json()["inherited_from"] == org.county_y.id
    r = client.put(
        f"/api/v1/calendars/units/{org.county_y.id}", headers=city_a, json={"calendar_id": None}
    )
    assert r.json()["inherited_from"] == org.city_a.id and r.json()["id"] == own
    hidden = create(client, admin, name="看不见")["id"]
    r = client.put(
        f"/api/v1/calendars/units/{org.county_y.id}", headers=city_a, json={"calendar_id": hidden}
    )
    assert "calendar_id" in fields(r)
    agent = token_for(db, make_staff(db, org.city_a, roles=("agent",)))
    r = client.put(
        f"/api/v1/calendars/units/{org.city_a.id}", headers=agent, json={"calendar_id": None}
    )
    assert r.status_code == 403
    # Days: the manager above every unit of the calendar, or an admin.
    day = {"day": "2026-12-02", "note": "盘点"}
    assert (
        client.post(f"/api/v1/calendars/{own}/overrides", headers=city_a, json=day).status_code
        == 201
    )
    assert (
        client.post(f"/api/v1/calendars/{own}/overrides", headers=county_x, json=day).status_code
        == 403
    )
    r = client.post(f"/api/v1/calendars/{shared}/overrides", headers=county_x, json=day)
    assert r.status_code == 403  # county Z uses it too
    default = default_id(db)
    assert (
        client.post(f"/api/v1/calendars/{default}/overrides", headers=city_a, json=day).status_code
        == 403
    )
    again = client.post(f"/api/v1/calendars/{own}/overrides", headers=admin, json=day)
    assert again.status_code == 409
    # A retried create with the same Idempotency-Key replays the first answer.
    key = {**city_a, "Idempotency-Key": "day-1"}
    other_day = {"day": "2026-12-03", "hours": [["09:00", "12:00"]]}
    first = client.post(f"/api/v1/calendars/{own}/overrides", headers=key, json=other_day)
    assert first.status_code == 201
    assert first.headers["Location"].endswith(f"/calendars/{own}/overrides/2026-12-03")
    replay = client.post(f"/api/v1/calendars/{own}/overrides", headers=key, json=other_day)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert (
        client.delete(f"/api/v1/calendars/{own}/overrides/2026-12-02", headers=county_x).status_code
        == 403
    )
    assert (
        client.delete(f"/api/v1/calendars/{own}/overrides/2026-12-02", headers=city_a).status_code
        == 204
    )
    assert (
        client.delete(f"/api/v1/calendars/{own}/overrides/2026-12-02", headers=city_a).status_code
        == 404
    )
    actions = set(
        db.scalars(
            select(AuditEntry.action).where(AuditEntry.object_type.in_(["calendar", "unit"]))
        )
    )
    assert {"unit.calendar", "calendar.override_add", "calendar.override_remove"} <= actions


def test_month_view_says_why(client, db):
    unit = make_unit(db, "省")
    h = token_for(db, make_staff(db, unit, roles=("admin",)))
    cal = default_id(db)
    client.post(
        f"/api/v1/calendars/{cal}/overrides",
        headers=h,
        json={"day": "2026-10-12", "hours": [], "note": "系统割接"},
    )
    client.post(
        f"/api/v1/calendars/{cal}/overrides",
        headers=h,
        json={"day": "2026-10-18", "hours": [["09:00", "12:00"]], "note": "加班"},
    )
    days = client.get(
        f"/api/v1/calendars/{cal}/days", headers=h, params={"month": "2026-10"}
    ).json()
    by = {d["day"]: d for d in days}
    assert len(days) == 31
    assert by["2026-10-01"]["reason"] == "holiday" and by["2026-10-01"]["holiday"] == "国庆节"
    assert not by["2026-10-01"]["working"]
    assert by["2026-10-10"]["reason"] == "makeup" and by["2026-10-10"]["working"]  # a Saturday
    assert by["2026-10-10"]["hours"] == [["08:30", "12:00"], ["13:30", "17:30"]]  # Monday's
    assert by["2026-10-11"]["reason"] == "weekend"
    assert by["2026-10-13"]["reason"] == "weekday" and by["2026-10-13"]["working"]
    assert (
        by["2026-10-12"]["reason"] == "override_closed" and by["2026-10-12"]["note"] == "系统割接"
    )
    assert by["2026-10-18"]["reason"] == "override_open"
    assert by["2026-10-18"]["hours"] == [["09:00", "12:00"]]
    english = client.get(
        f"/api/v1/calendars/{cal}/days",
        headers={**h, "Accept-Language": "en"},
        params={"month": "2026-10"},
    ).json()
    assert english[0]["holiday"] == "National Day"
    # 2027 is not in the holiday data yet: weekly hours alone.
    jan = client.get(f"/api/v1/calendars/{cal}/days", headers=h, params={"month": "2027-01"}).json()
    assert jan[0]["reason"] == "uncovered" and jan[0]["working"]  # 1 January, a Friday
    assert jan[1]["reason"] == "uncovered" and not jan[1]["working"]
    # Saturday hours: a plain Saturday works them, one inside National Day does not.
    saturdays = {**WEEK, "5": [["09:00", "12:00"]]}
    assert (
        client.patch(f"/api/v1/calendars/{cal}", headers=h, json={"hours": saturdays}).status_code
        == 200
    )
    days = client.get(
        f"/api/v1/calendars/{cal}/days", headers=h, params={"month": "2026-10"}
    ).json()
    by = {d["day"]: d for d in days}
    assert by["2026-10-17"]["working"] and by["2026-10-17"]["hours"] == [["09:00", "12:00"]]
    assert by["2026-10-03"]["reason"] == "holiday" and not by["2026-10-03"]["working"]
    assert by["2026-10-10"]["hours"] == [["09:00", "12:00"]]  # make-up Saturday: its own hours


def test_other_countries_come_from_holidays(client, db):
    unit = make_unit(db, "纽约办事处")
    h = token_for(db, make_staff(db, unit, roles=("admin",)))
    us = create(client, h, name="美国", country="US", timezone="America/New_York")["id"]
    days = client.get(f"/api/v1/calendars/{us}/days", headers=h, params={"month": "2026-07"})
    by = {d["day"]: d for d in days.json()}
    # 4 July 2026 is a Saturday: observed on Friday the 3rd, which does not work.
    assert by["2026-07-03"]["reason"] == "holiday" and not by["2026-07-03"]["working"]
    assert "Independence Day" in by["2026-07-03"]["holiday"]
    assert by["2026-07-04"]["reason"] == "holiday"
    assert by["2026-07-06"]["reason"] == "weekday" and by["2026-07-06"]["working"]
    assert by["2026-07-06"]["hours"] == WEEK["0"]
    assert client.get(f"/api/v1/calendars/{us}", headers=h).json()["holiday_data_missing"] == []


def test_holiday_data_warning(client, db):
    unit = make_unit(db, "省")
    admin = make_staff(db, unit, roles=("admin",))
    h = token_for(db, admin)
    us = create(client, h, name="美国", country="US")["id"]
    client.put(f"/api/v1/calendars/units/{unit.id}", headers=h, json={"calendar_id": us})
    # 26 November 2026: within 60 days of the year's end, and 2027 is not covered for China.
    warnings = client.get("/api/v1/calendars/holiday-data", headers=h).json()
    assert [(w["calendar_id"], w["years"]) for w in warnings] == [(default_id(db), [2027])]
    detail = client.get(f"/api/v1/calendars/{default_id(db)}", headers=h).json()
    assert detail["holiday_data_missing"] == [2027]
    clock.set_now(lambda: datetime(2026, 6, 1, tzinfo=UTC))
    assert client.get("/api/v1/calendars/holiday-data", headers=h).json() == []
    clock.set_now(lambda: datetime(2031, 3, 1, tzinfo=UTC))
    h = token_for(db, admin)  # the first one has expired by then
    assert client.get("/api/v1/calendars/holiday-data", headers=h).json()[0]["years"] == [2031]


def test_a_change_moves_no_due_time_of_existing_tickets(client, db):
    unit = make_unit(db, "西湖", region_code="330106")
    h = token_for(db, make_staff(db, unit, roles=("admin",)))
    make_staff(db, unit, roles=("agent",))
    customer = make_customer(db, unit)
    customer.service_level = "4A"
    db.commit()
    cal = create(client, h, name="西湖日历")["id"]
    client.put(f"/api/v1/calendars/units/{unit.id}", headers=h, json={"calendar_id": cal})
    body = {
        "customer_id": customer.id,
        "category_code": "technical_support",
        "subject": "断网",
        "priority": "high",
    }
    first = client.post("/api/v1/tickets", headers=h, json=body).json()
    # 4A high: first response in 60 business minutes; 09:00–12:00 → due at 11:00.
    assert datetime.fromisoformat(first["first_response_due"]) == datetime(
        2026, 11, 24, 11, tzinfo=SH
    )
    r = client.patch(f"/api/v1/calendars/{cal}", headers=h, json={"always_open": True})
    assert r.status_code == 200 and r.json()["always_open"] is True
    again = client.get(f"/api/v1/tickets/{first['id']}", headers=h).json()
    assert again["first_response_due"] == first["first_response_due"]
    assert again["resolution_due"] == first["resolution_due"]
    # New tickets follow the calendar as it is now: 7×24 counts calendar time.
    second = client.post("/api/v1/tickets", headers=h, json=body).json()
    assert datetime.fromisoformat(second["resolution_due"]) == TUESDAY_10 + timedelta(minutes=960)
    assert datetime.fromisoformat(second["first_response_due"]) == datetime(
        2026, 11, 24, 11, tzinfo=SH
    )
    assert datetime.fromisoformat(second["resolution_due"]) < datetime.fromisoformat(
        first["resolution_due"]
    )
    # An extra closed day pushes the due times of new tickets past it.
    client.patch(f"/api/v1/calendars/{cal}", headers=h, json={"always_open": False})
    client.post(f"/api/v1/calendars/{cal}/overrides", headers=h, json={"day": "2026-11-24"})
    third = client.post("/api/v1/tickets", headers=h, json=body).json()
    assert datetime.fromisoformat(third["first_response_due"]) == datetime(
        2026, 11, 25, 10, tzinfo=SH
    )
