"""Copying and deleting business calendars: what a copy carries, what stops a delete (and
that the refusal names it, in the caller's language), the audit, who may (admins only:
others get 403, or 404 out of scope, and nothing changes), and that neither can leave a
stale compiled calendar in this process's cache."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text

from kefu import clock
from kefu.audit.models import AuditEntry
from kefu.errors import Conflict
from kefu.scope import SYSTEM
from kefu.sla import service as calendars
from kefu.sla.models import BusinessCalendar, CalendarOverride
from kefu.sla.schemas import CalendarCopy
from tests.factories import make_customer, make_staff, make_unit, token_for
from tests.scope_matrix import build_org

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


def state(db) -> tuple:
    """Everything a refused copy or delete must leave as it was."""
    db.expire_all()
    cals = db.execute(
        select(BusinessCalendar.id, BusinessCalendar.name, BusinessCalendar.version).order_by(
            BusinessCalendar.id
        )
    ).all()
    days = db.execute(
        select(CalendarOverride.calendar_id, CalendarOverride.day).order_by(CalendarOverride.id)
    ).all()
    audit = db.scalar(select(func.count()).select_from(AuditEntry))
    return cals, days, audit


def test_copy_carries_hours_zone_holidays_and_days_and_is_audited(client, db):
    unit = make_unit(db, "省")
    h = token_for(db, make_staff(db, unit, roles=("admin",)))
    src = create(client, h, name="美国", country="US", timezone="America/New_York")
    client.patch(f"/api/v1/calendars/{src['id']}", headers=h, json={"always_open": True})
    for day in (
        {"day": "2026-12-01", "note": "盘点"},
        {"day": "2026-12-05", "hours": [["09:00", "12:00"]]},
    ):
        r = client.post(f"/api/v1/calendars/{src['id']}/overrides", headers=h, json=day)
        assert r.status_code == 201
    client.put(f"/api/v1/calendars/units/{unit.id}", headers=h, json={"calendar_id": src["id"]})
    key = {**h, "Idempotency-Key": "copy-1"}
    r = client.post(f"/api/v1/calendars/{src['id']}/copy", headers=key, json={"name": "美国 副本"})
    assert r.status_code == 201, r.text
    copy = r.json()
    assert r.headers["Location"].endswith(f"/calendars/{copy['id']}")
    assert copy["id"] != src["id"] and copy["name"] == "美国 副本"
    assert (copy["country"], copy["timezone"], copy["always_open"]) == (
        "US",
        "America/New_York",
        True,
    )
    assert copy["hours"] == WEEK and copy["version"] == 1 and not copy["is_default"]
    assert copy["unit_ids"] == []  # given to no unit
    assert [(o["day"], o["hours"], o["note"]) for o in copy["overrides"]] == [
        ("2026-12-01", [], "盘点"),
        ("2026-12-05", [["09:00", "12:00"]], ""),
    ]
    replay = client.post(
        f"/api/v1/calendars/{src['id']}/copy", headers=key, json={"name": "美国 副本"}
    )
    assert replay.json()["id"] == copy["id"] and replay.headers["Idempotent-Replayed"] == "true"
    # The copy is its own: a change to it leaves the source as it was.
    client.delete(f"/api/v1/calendars/{copy['id']}/overrides/2026-12-01", headers=h)
    again = client.get(f"/api/v1/calendars/{src['id']}", headers=h).json()
    assert len(again["overrides"]) == 2
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "calendar.copy")).one()
    assert entry.object_id == str(copy["id"])
    assert entry.changes["copied_from"]["after"] == src["id"]
    assert entry.changes["name"]["after"] == "美国 副本"
    assert entry.changes["override:2026-12-01"]["after"] == {"hours": [], "note": "盘点"}
    # A name is required and checked like on create.
    r = client.post(f"/api/v1/calendars/{src['id']}/copy", headers=h, json={"name": " "})
    assert r.status_code == 422 and "name" in {e["field"] for e in r.json()["errors"]}
    r = client.post("/api/v1/calendars/999999/copy", headers=h, json={"name": "x"})
    assert r.status_code == 404


def test_delete_refused_while_in_use_naming_the_units(client, db):
    province = make_unit(db, "测试省")
    city = make_unit(db, "甲市", province)
    county = make_unit(db, "X县", city)
    h = token_for(db, make_staff(db, province, roles=("admin",)))
    cal = create(client, h, name="共用")["id"]
    client.post(f"/api/v1/calendars/{cal}/overrides", headers=h, json={"day": "2026-12-01"})
    for u in (city, county):
        client.put(f"/api/v1/calendars/units/{u.id}", headers=h, json={"calendar_id": cal})
    before = state(db)
    r = client.delete(f"/api/v1/calendars/{cal}", headers=h)
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "甲市" in r.json()["detail"] and "X县" in r.json()["detail"]
    assert "仍由" in r.json()["detail"]
    en = client.delete(f"/api/v1/calendars/{cal}", headers={**h, "Accept-Language": "en"})
    assert en.status_code == 409 and "still used by" in en.json()["detail"]
    assert state(db) == before
    # The default calendar is never deleted.
    r = client.delete(f"/api/v1/calendars/{default_id(db)}", headers=h)
    assert r.status_code == 409 and "默认日历" in r.json()["detail"]
    # Once no unit uses it (an inactive one counts too), it goes, with its days, audited.
    client.put(f"/api/v1/calendars/units/{city.id}", headers=h, json={"calendar_id": None})
    r = client.delete(f"/api/v1/calendars/{cal}", headers=h)
    assert r.status_code == 409 and "X县" in r.json()["detail"] and "甲市" not in r.json()["detail"]
    client.put(f"/api/v1/calendars/units/{county.id}", headers=h, json={"calendar_id": None})
    assert client.delete(f"/api/v1/calendars/{cal}", headers=h).status_code == 204
    assert client.get(f"/api/v1/calendars/{cal}", headers=h).status_code == 404
    assert client.delete(f"/api/v1/calendars/{cal}", headers=h).status_code == 404
    db.expire_all()
    assert (
        db.scalar(
            select(func.count())
            .select_from(CalendarOverride)
            .where(CalendarOverride.calendar_id == cal)
        )
        == 0
    )
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "calendar.delete")).one()
    assert entry.object_id == str(cal)
    assert entry.changes["name"] == {"before": "共用", "after": None}
    assert entry.changes["override:2026-12-01"]["before"] == {"hours": [], "note": ""}


def test_delete_refused_for_an_inactive_unit_too(db):
    unit = make_unit(db, "旧分公司")
    row = BusinessCalendar(name="旧", hours=WEEK)
    db.add(row)
    db.flush()
    unit.calendar_id = row.id
    unit.is_active = False
    db.flush()
    with pytest.raises(Conflict) as exc:
        calendars.delete_calendar(db, SYSTEM, row.id)
    assert exc.value.params["units"] == "旧分公司"
    assert exc.value.errors[0].field == "calendar"
    # Copy through the service: the same carry-over, audited under the caller.
    copy = calendars.copy_calendar(db, SYSTEM, row.id, CalendarCopy(name="旧 副本"))
    assert copy.hours == WEEK and copy.id != row.id


def test_only_admins_copy_or_delete_and_nothing_changes(client, db):
    org = build_org(db)
    admin = org.headers["admin"]
    cal = create(client, admin, name="甲市自用")["id"]
    client.put(f"/api/v1/calendars/units/{org.city_a.id}", headers=admin, json={"calendar_id": cal})
    spare = create(client, admin, name="备用")["id"]  # nobody uses it: only admins see it
    agent = token_for(db, make_staff(db, org.city_a, username="agent-a", roles=("agent",)))
    db.commit()
    before = state(db)
    # In scope (the manager and agent of city A see its calendar and the default): 403.
    for h in (org.headers["city_a"], org.headers["county_x"], agent):
        for target in (cal, default_id(db)):
            r = client.delete(f"/api/v1/calendars/{target}", headers=h)
            assert r.status_code == 403, r.text
            r = client.post(f"/api/v1/calendars/{target}/copy", headers=h, json={"name": "偷偷"})
            assert r.status_code == 403, r.text
    # Out of scope: 404, so existence does not leak.
    for h in (org.headers["city_b"], org.headers["county_z"]):
        assert client.delete(f"/api/v1/calendars/{cal}", headers=h).status_code == 404
        r = client.post(f"/api/v1/calendars/{cal}/copy", headers=h, json={"name": "偷偷"})
        assert r.status_code == 404
    for key in org.units:
        assert (
            client.delete(f"/api/v1/calendars/{spare}", headers=org.headers[key]).status_code == 404
        )
    assert state(db) == before


def test_a_deleted_calendar_leaves_nothing_stale_in_the_cache(client, db):
    """Calendar N is compiled and cached here; it is deleted and a new calendar gets the same
    id and version (SQLite reuses the highest id; another process may do all this). The
    next ticket must be due by the new calendar's hours, not the cached ones."""
    county = make_unit(db, "西湖", region_code="330106")
    h = token_for(db, make_staff(db, county, roles=("admin",)))
    customer = make_customer(db, county)
    customer.service_level = "4A"  # high: first response within 60 business minutes
    db.commit()
    body = {
        "customer_id": customer.id,
        "category_code": "consultation",
        "subject": "咨询",
        "priority": "high",
    }

    def due() -> datetime:
        r = client.post("/api/v1/tickets", headers=h, json=body)
        assert r.status_code == 201, r.text
        return datetime.fromisoformat(r.json()["first_response_due"]).astimezone(SH)

    cal = create(client, h, name="早班", hours={str(d): [["06:00", "10:30"]] for d in range(5)})
    client.put(f"/api/v1/calendars/units/{county.id}", headers=h, json={"calendar_id": cal["id"]})
    assert due() == datetime(2026, 11, 25, 6, 30, tzinfo=SH)  # compiled and cached
    client.put(f"/api/v1/calendars/units/{county.id}", headers=h, json={"calendar_id": None})
    assert client.delete(f"/api/v1/calendars/{cal['id']}", headers=h).status_code == 204
    # Elsewhere: a new calendar with the same id and version 1, given to the unit.
    late = BusinessCalendar(
        id=cal["id"], name="晚班", hours={str(d): [["10:00", "20:00"]] for d in range(5)}
    )
    db.add(late)
    db.flush()
    assert late.version == 1
    db.execute(
        text("UPDATE units SET calendar_id = :c WHERE id = :u"), {"c": late.id, "u": county.id}
    )
    db.commit()
    assert due() == datetime(2026, 11, 24, 11, tzinfo=SH)


def test_a_copy_compiles_on_its_own(client, db):
    """A copy is a new calendar with version 1: its due times come from its own days, and a
    change to it is not served from the source's cache entry."""
    county = make_unit(db, "西湖", region_code="330106")
    h = token_for(db, make_staff(db, county, roles=("admin",)))
    customer = make_customer(db, county)
    customer.service_level = "4A"
    db.commit()
    body = {
        "customer_id": customer.id,
        "category_code": "consultation",
        "subject": "咨询",
        "priority": "high",
    }
    src = create(client, h, name="源")
    client.put(f"/api/v1/calendars/units/{county.id}", headers=h, json={"calendar_id": src["id"]})
    first = client.post("/api/v1/tickets", headers=h, json=body).json()
    assert datetime.fromisoformat(first["first_response_due"]) == datetime(
        2026, 11, 24, 11, tzinfo=SH
    )
    copy = client.post(
        f"/api/v1/calendars/{src['id']}/copy", headers=h, json={"name": "副本"}
    ).json()
    client.post(f"/api/v1/calendars/{copy['id']}/overrides", headers=h, json={"day": "2026-11-24"})
    client.put(f"/api/v1/calendars/units/{county.id}", headers=h, json={"calendar_id": copy["id"]})
    second = client.post("/api/v1/tickets", headers=h, json=body).json()
    assert datetime.fromisoformat(second["first_response_due"]) == datetime(
        2026, 11, 25, 10, tzinfo=SH
    )
    # The source is untouched by the copy's day.
    assert client.get(f"/api/v1/calendars/{src['id']}", headers=h).json()["overrides"] == []


def test_batch_reads_give_the_same_refs_as_single_ones(db):
    """The batch intake reads many units' calendar refs at once: the same (id, version,
    stamp) as one by one, so both hit the same cache entries."""
    from kefu import cache

    province = make_unit(db, "省")
    city = make_unit(db, "杭州", province)
    county = make_unit(db, "西湖", city)
    own = BusinessCalendar(name="杭州", hours=WEEK)
    db.add(own)
    db.flush()
    city.calendar_id = own.id
    db.flush()
    single = {u.id: calendars.calendar_ref(db, u.id) for u in (province, city, county)}
    assert single[county.id] == (own.id, 1, own.stamp) and len(own.stamp) == 32
    with cache.reads_once(db) as memo:
        calendars.read_calendar_refs(db, {province.id, city.id, county.id}, {})
        assert {u: memo[("calendar_ref", u)] for u in single} == single
