"""Business calendars and routing rules on the web: pages and HTMX fragments, inline errors,
who sees which forms, and the holiday-data banner."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from kefu import clock
from kefu.sla.models import BusinessCalendar, CalendarOverride
from kefu.tickets.models import RoutingRule
from tests.factories import make_customer, make_staff, make_unit
from tests.web.helpers import HX, field_error, post, signed_in


@pytest.fixture(autouse=True)
def late_november():
    clock.set_now(lambda: datetime(2026, 11, 26, 2, tzinfo=UTC))


def default_id(db) -> int:
    return db.scalar(select(BusinessCalendar.id).where(BusinessCalendar.is_default.is_(True)))


def week(**changes: str) -> dict[str, str]:
    form = {f"h{d}": "08:30-12:00, 13:30-17:30" for d in range(5)}
    form.update({"h5": "", "h6": "", "name": "标准工作日历", "timezone": "Asia/Shanghai"})
    form.update({"country": "CN", "version": "1"})
    form.update(changes)
    return form


def test_admin_edits_hours_days_and_units_with_errors_beside_fields(client, db):
    province = make_unit(db, "省")
    city = make_unit(db, "杭州", province)
    admin = make_staff(db, province, roles=("admin",))
    db.commit()
    signed_in(client, admin.username)
    home = client.get("/")
    assert "holiday-warning" in home.text and "2027" in home.text  # 2027 not in the data yet
    cal = default_id(db)
    page = client.get(f"/calendars/{cal}?month=2026-10")
    assert page.status_code == 200
    assert 'data-day="2026-10-01" data-reason="holiday"' in page.text and "国庆节" in page.text
    assert 'data-day="2026-10-10" data-reason="makeup"' in page.text
    fragment = client.get(f"/calendars/{cal}?month=2026-11", headers={**HX, "HX-Target": "month"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'data-day="2026-11-30"' in fragment.text
    # Bad hours: the message beside the weekday, nothing saved.
    r = post(client, f"/calendars/{cal}", week(h0="08:00-12:00, 11:00-13:00", h2="17:00-09:00"))
    assert r.status_code == 422
    assert field_error(r.text, "f-cal-h0") and field_error(r.text, "f-cal-h2")
    r = post(client, f"/calendars/{cal}", week(timezone="Mars/Olympus", country="QQ"))
    assert field_error(r.text, "f-cal-timezone") and field_error(r.text, "f-cal-country")
    r = post(client, f"/calendars/{cal}", week(h5="09:00-12:00"))
    assert r.status_code == 303
    db.expire_all()
    row = db.get(BusinessCalendar, cal)
    assert row.version == 2 and row.hours["5"] == [["09:00", "12:00"]]
    # Days of its own: an extra closed day, then one outside the range.
    r = post(client, f"/calendars/{cal}/overrides", {"o_day": "2026-12-01", "o_note": "盘点"})
    assert r.status_code == 303
    page = client.get(f"/calendars/{cal}?month=2026-12")
    assert (
        'data-day="2026-12-01" data-reason="override_closed"' in page.text and "盘点" in page.text
    )
    r = post(client, f"/calendars/{cal}/overrides", {"o_day": "2035-01-01"})
    assert r.status_code == 422 and field_error(r.text, "f-ov-o_day")
    r = post(client, f"/calendars/{cal}/overrides", {"o_day": "2026-12-02", "o_hours": "9-12"})
    assert r.status_code == 422 and field_error(r.text, "f-ov-o_hours")
    r = post(client, f"/calendars/{cal}/overrides/2026-12-01/delete")
    assert r.status_code == 303
    assert (
        db.scalars(select(CalendarOverride).where(CalendarOverride.calendar_id == cal)).all() == []
    )
    # A new calendar, given to the city.
    r = post(
        client, "/calendars", {"name": "杭州日历", "timezone": "Asia/Shanghai", "country": "CN"}
    )
    assert r.status_code == 303
    new_id = int(r.headers["location"].split("/")[2].split("?")[0])
    r = post(client, f"/calendars/{new_id}/units", {"unit_id": str(city.id)})
    assert r.status_code == 303
    page = client.get(f"/calendars/{new_id}")
    assert "杭州" in page.text and f"/calendars/{new_id}/units/{city.id}/inherit" in page.text
    r = post(client, "/calendars", {"name": "", "timezone": "Asia/Shanghai", "country": "ZZ"})
    assert r.status_code == 422 and field_error(r.text, "f-new-country")


def test_who_sees_which_calendar_forms(client, db):
    province = make_unit(db, "省")
    city = make_unit(db, "杭州", province)
    other = make_unit(db, "宁波", province)
    manager = make_staff(db, city, roles=("manager",))
    agent = make_staff(db, city, roles=("agent",))
    hidden = BusinessCalendar(name="宁波日历", hours={}, country="CN")
    db.add(hidden)
    db.flush()
    other.calendar_id = hidden.id
    db.commit()
    signed_in(client, manager.username)
    cal = default_id(db)
    page = client.get(f"/calendars/{cal}")
    assert page.status_code == 200
    assert 'id="calendar-form"' not in page.text  # settings: admins only
    assert 'id="override-form"' not in page.text  # the default calendar's days: admins only
    assert 'id="assign-form"' in page.text  # units of their subtree
    assert "holiday-warning" in page.text  # the calendar page warns everyone who sees it
    assert "holiday-warning" not in client.get("/").text  # the home banner is for admins
    assert client.get(f"/calendars/{hidden.id}").status_code == 404
    assert (
        post(client, f"/calendars/{hidden.id}/overrides", {"o_day": "2026-12-01"}).status_code
        == 404
    )
    assert post(client, f"/calendars/{cal}", week()).status_code == 403
    r = post(client, f"/calendars/{cal}/units", {"unit_id": str(other.id)})
    assert r.status_code == 404  # a unit outside their subtree
    client.cookies.clear()
    signed_in(client, agent.username)
    page = client.get(f"/calendars/{cal}")
    assert page.status_code == 200 and 'id="assign-form"' not in page.text


def test_routing_rules_page_edit_and_test(client, db):
    province = make_unit(db, "省", region_code="330000", functions=["technical", "service"])
    county = make_unit(db, "县", province, region_code="330106")
    far = make_unit(db, "异地县", province, region_code="330110")
    admin = make_staff(db, province, roles=("admin",))
    make_staff(db, far, roles=("agent",), display_name="本地坐席")
    customer = make_customer(db, county, name="测试客户有限公司")
    db.commit()
    signed_in(client, admin.username)
    assert client.get("/routing").status_code == 200
    r = post(
        client, "/routing", {"kind": "category_function", "category_code": "other", "function": ""}
    )
    assert r.status_code == 422 and field_error(r.text, "f-new-function")
    r = post(client, "/routing", {"kind": "site_region", "category_code": "", "note": "就近上门"})
    assert r.status_code == 303
    rule = db.scalars(select(RoutingRule)).one()
    params = {"customer": "测试客户", "category_code": "fault_repair", "site_region_code": "330110"}
    page = client.get("/routing", params=params)
    assert page.status_code == 200 and "异地县" in page.text and "本地坐席" in page.text
    fragment = client.get("/routing", params=params, headers=HX)
    assert "<html" not in fragment.text and "异地县" in fragment.text
    # A rule action comes back to the page with the same test on it.
    back = urlencode({**params, "evil": "1"})
    r = post(client, f"/routing/{rule.id}", {"action": "disable", "back": back})
    assert r.status_code == 303
    assert (
        r.headers["location"].startswith("/routing?customer=")
        and "evil" not in r.headers["location"]
    )
    again = client.get(r.headers["location"])
    assert 'id="route-unit"' in again.text, again.text[-3000:]
    page = client.get("/routing", params={**params, "rule": str(rule.id)})
    assert 'class="trace-disabled is-current-row"' in page.text
    bad = client.get("/routing", params={**params, "customer": "没有这个客户"})
    assert bad.status_code == 422 and field_error(bad.text, "f-test-customer")
    assert post(client, f"/routing/{rule.id}", {"action": "delete"}).status_code == 303
    assert db.scalars(select(RoutingRule)).all() == []
    assert customer.id


def test_routing_page_is_for_admins(client, db):
    unit = make_unit(db)
    manager = make_staff(db, unit, roles=("manager",))
    db.add(RoutingRule(kind="site_region"))
    db.commit()
    rule_id = db.scalars(select(RoutingRule.id)).one()
    signed_in(client, manager.username)
    assert client.get("/routing").status_code == 404
    assert post(client, "/routing", {"kind": "site_region"}).status_code == 404
    assert post(client, f"/routing/{rule_id}", {"action": "disable"}).status_code == 404


def test_admin_copies_and_deletes_a_calendar(client, db):
    province = make_unit(db, "省")
    city = make_unit(db, "杭州", province)
    admin = make_staff(db, province, roles=("admin",))
    src = BusinessCalendar(name="杭州日历", hours={"0": [["09:00", "12:00"]]}, country="US")
    db.add(src)
    db.flush()
    db.add(CalendarOverride(calendar_id=src.id, day=datetime(2026, 12, 1).date(), note="盘点"))
    city.calendar_id = src.id
    db.commit()
    signed_in(client, admin.username)
    page = client.get(f"/calendars/{src.id}")
    assert 'id="copy-form"' in page.text and 'id="delete-form"' in page.text
    assert "data-confirm=" in page.text.split('id="delete-form"')[1].split(">")[0]
    default = client.get(f"/calendars/{default_id(db)}")
    assert 'id="delete-form"' not in default.text  # the default one is never deleted
    # Copy: a name is required (beside the field), then a copy with the days.
    r = post(client, f"/calendars/{src.id}/copy", {"c_name": ""})
    assert r.status_code == 422 and field_error(r.text, "f-cp-c_name")
    r = post(client, f"/calendars/{src.id}/copy", {"c_name": "宁波日历"})
    assert r.status_code == 303
    copy_id = int(r.headers["location"].split("/")[2].split("?")[0])
    copy = client.get(r.headers["location"])
    assert "宁波日历" in copy.text and "2026-12-01" in copy.text and "已创建" in copy.text
    # Delete: refused while the city uses it, saying so; the copy nobody uses goes.
    r = post(client, f"/calendars/{src.id}/delete")
    assert r.status_code == 409
    assert 'id="delete-error"' in r.text and "杭州" in r.text.split('id="delete-error"')[1]
    assert db.get(BusinessCalendar, src.id) is not None
    r = post(client, f"/calendars/{copy_id}/delete")
    assert r.status_code == 303 and r.headers["location"].startswith("/calendars?notice=deleted")
    listing = client.get(r.headers["location"])
    assert "已删除" in listing.text and "宁波日历" not in listing.text
    db.expire_all()
    assert db.get(BusinessCalendar, copy_id) is None


def test_managers_may_neither_copy_nor_delete(client, db):
    province = make_unit(db, "省")
    city = make_unit(db, "杭州", province)
    manager = make_staff(db, city, roles=("manager",))
    own = BusinessCalendar(name="杭州日历", hours={}, country="CN")
    db.add(own)
    db.flush()
    city.calendar_id = own.id
    db.commit()
    signed_in(client, manager.username)
    page = client.get(f"/calendars/{own.id}")
    assert 'id="copy-form"' not in page.text and 'id="delete-form"' not in page.text
    city.calendar_id = None
    db.commit()  # now nobody uses it, so only a missing permission stops the delete
    count = len(db.scalars(select(BusinessCalendar)).all())
    assert post(client, f"/calendars/{default_id(db)}/copy", {"c_name": "x"}).status_code == 403
    assert post(client, f"/calendars/{default_id(db)}/delete").status_code == 403
    assert post(client, f"/calendars/{own.id}/delete").status_code == 404  # out of sight now
    db.expire_all()
    assert len(db.scalars(select(BusinessCalendar)).all()) == count
