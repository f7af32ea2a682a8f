"""Compiled calendars and service-level terms are cached in process memory, but only as a
cache: each intake reads the governing calendar's id and version, and the level's current
version, from the database, so a change made by another process is seen by the next ticket.
The changes below are plain SQL, as another process (or another Kefu version) would make
them, behind this process's back."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select, text, update

from kefu import clock
from kefu.service_levels.models import ServiceLevel, ServiceLevelVersion, SlaTarget
from kefu.sla.models import BusinessCalendar
from tests.factories import make_customer, make_staff, make_unit, token_for

SH = ZoneInfo("Asia/Shanghai")
TUESDAY_10 = datetime(2026, 11, 24, 10, tzinfo=SH)


@pytest.fixture(autouse=True)
def tuesday_morning():
    clock.set_now(lambda: TUESDAY_10.astimezone(UTC))


def first_response_due(client, h, customer_id: int) -> datetime:
    r = client.post(
        "/api/v1/tickets",
        headers=h,
        json={
            "customer_id": customer_id,
            "category_code": "consultation",
            "subject": "咨询",
            "priority": "high",
        },
    )
    assert r.status_code == 201, r.text
    return datetime.fromisoformat(r.json()["first_response_due"]).astimezone(SH)


@pytest.fixture
def org(db):
    county = make_unit(db, "西湖", region_code="330106")
    h = token_for(db, make_staff(db, county, roles=("admin",)))
    customer = make_customer(db, county)
    customer.service_level = "4A"  # high: first response within 60 business minutes
    db.commit()
    return county, h, customer


def test_a_calendar_changed_elsewhere_is_used_by_the_next_ticket(client, db, org):
    _county, h, customer = org
    assert first_response_due(client, h, customer.id) == datetime(2026, 11, 24, 11, tzinfo=SH)
    # Another process moves Tuesday's morning start to 10:30 and bumps the version.
    default = db.scalars(select(BusinessCalendar).where(BusinessCalendar.is_default)).one()
    hours = {**default.hours, "1": [["10:30", "12:00"], ["13:30", "17:30"]]}
    db.execute(
        update(BusinessCalendar)
        .where(BusinessCalendar.id == default.id)
        .values(hours=hours, version=BusinessCalendar.version + 1)
    )
    db.commit()
    assert first_response_due(client, h, customer.id) == datetime(2026, 11, 24, 11, 30, tzinfo=SH)


def test_a_calendar_given_to_the_unit_elsewhere_is_used_by_the_next_ticket(client, db, org):
    county, h, customer = org
    first_response_due(client, h, customer.id)  # the default calendar is compiled and cached
    own = BusinessCalendar(name="早班", hours={str(d): [["06:00", "10:30"]] for d in range(5)})
    db.add(own)
    db.flush()
    db.execute(
        text("UPDATE units SET calendar_id = :c WHERE id = :u"), {"c": own.id, "u": county.id}
    )
    db.commit()
    # 10:00 + 30 minutes to 10:30, then 30 from Wednesday 06:00.
    assert first_response_due(client, h, customer.id) == datetime(2026, 11, 25, 6, 30, tzinfo=SH)


def test_a_new_service_level_version_is_used_by_the_next_ticket(client, db, org):
    _county, h, customer = org
    assert first_response_due(client, h, customer.id) == datetime(2026, 11, 24, 11, tzinfo=SH)
    level = db.get(ServiceLevel, "4A")
    old = db.get(ServiceLevelVersion, level.current_version_id)
    new = ServiceLevelVersion(
        level_code="4A",
        version=old.version + 1,
        name_zh=old.name_zh,
        name_en=old.name_en,
        return_visit_hours=old.return_visit_hours,
    )
    db.add(new)
    db.flush()
    db.add(
        SlaTarget(
            version_id=new.id,
            priority="high",
            first_response_minutes=120,
            next_response_minutes=120,
            resolution_minutes=960,
        )
    )
    db.execute(
        text("UPDATE service_levels SET current_version_id = :v WHERE code = '4A'"), {"v": new.id}
    )
    db.commit()
    assert first_response_due(client, h, customer.id) == datetime(2026, 11, 24, 12, tzinfo=SH)


def test_a_warm_intake_reads_the_calendar_and_the_level_once(client, db, org, engine):
    _county, h, customer = org
    first_response_due(client, h, customer.id)
    seen: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        first_response_due(client, h, customer.id)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    selects = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    # Which calendar governs the unit was read by the first intake, and no configuration
    # table changed since (one look at the stamp says so).
    assert not any("FROM calendars" in s for s in selects)
    assert sum("FROM config_stamp" in s for s in selects) == 1
    assert not any("calendar_overrides" in s or "sla_targets" in s for s in selects)
    assert not any("FROM service_level_versions" in s for s in selects)
