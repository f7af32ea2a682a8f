"""A real browser on the calendar page and the routing rules: the month view with China's
holidays and make-up days, hours with an error beside the weekday, an extra closed day
added and removed; rules added, reordered, disabled and tested.

Like test_browser.py: uvicorn in a thread on its own SQLite file with the demo organisation,
Debian's chromium through Playwright; the clock stands at 26 November 2026 (so the holiday
data lacks 2027 and the banner shows). Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from kefu import clock, schema
from kefu.app import create_app
from kefu.config import Settings, use_settings
from kefu.customers import service as customer_service
from kefu.customers.schemas import CustomerCreate
from kefu.db import make_engine, make_sessionmaker, unit_of_work
from kefu.demo import organisation
from kefu.scope import SYSTEM
from kefu.units.models import Unit
from tests.web.helpers import live_server
from tests.web.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]
NOW = datetime(2026, 11, 26, 2, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    if not CHROMIUM.exists():
        pytest.skip("the browser test needs Debian's chromium at /usr/bin/chromium")
    url = "sqlite:///" + str(tmp_path / "calendars-browser.db")
    schema.upgrade(url)
    settings = Settings(
        database_url=url, data_dir=tmp_path / "var", secret_key="browser", embedded_worker=False
    )
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    clock.set_now(lambda: NOW)
    with unit_of_work(factory) as s:
        organisation.build(s, SYSTEM, progress=lambda _: None)
        xihu = s.scalars(select(Unit).where(Unit.region_code == "330106")).one()
        customer_service.create_customer(
            s,
            SYSTEM,
            CustomerCreate(
                name="西湖浏览器测试有限公司", owning_unit_id=xihu.id, region_code="330106"
            ),  # type: ignore[call-arg]
        )
    app = create_app(settings, factory)
    try:
        with live_server(app) as base:
            yield base
    finally:
        clock.set_now(None)
        engine.dispose()
        use_settings(None)


def _sign_in(page, server: str, path: str) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page.goto(server + path)
    page.get_by_label("用户名").fill("admin")
    page.get_by_label("密码").fill(organisation.DEMO_PASSWORD)
    page.get_by_label("密码").press("Enter")
    expect(page).to_have_url(server + path)
    page.wait_for_load_state("load")  # htmx and kefu.js are deferred


def test_calendar_page(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)

    def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
        page.screenshot(path=str(ARTIFACTS / f"calendars-{name}.png"), full_page=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
            page = context.new_page()
            _sign_in(page, server, "/calendars")
            expect(page.locator("#holiday-warning")).to_contain_text("2027")
            expect(page.locator(".sidenav [aria-current=page]")).to_have_text("工作日历")
            page.get_by_role("link", name="标准工作日历").click()
            expect(page.get_by_role("heading", level=1)).to_contain_text("标准工作日历")
            expect(page.locator("#month")).to_contain_text("2026-11")
            shot(page, "01-november")

            # Back to October through the month view (an HTMX swap that keeps the URL).
            page.get_by_role("link", name="上个月").click()
            expect(page).to_have_url(re.compile(r"month=2026-10"))
            national = page.locator('#month [data-day="2026-10-01"]')
            expect(national).to_have_attribute("data-reason", "holiday")
            expect(national).to_contain_text("国庆节")
            makeup = page.locator('#month [data-day="2026-10-10"]')
            expect(makeup).to_have_attribute("data-reason", "makeup")
            expect(makeup).to_contain_text("08:30-12:00")
            expect(page.locator('#month [data-day="2026-10-13"]')).to_have_class(
                re.compile("day-work")
            )
            shot(page, "02-october")

            # Hours: an end before the start is refused beside Saturday; then fixed.
            page.get_by_label("星期六").fill("09:00-08:00")
            page.get_by_role("button", name="保存", exact=True).click()
            expect(page.locator("#f-cal-h5-error")).to_be_visible()
            shot(page, "03-hours-error")
            page.get_by_label("星期六").fill("09:00-12:00")
            page.get_by_role("button", name="保存", exact=True).click()
            expect(page.locator(".toast")).to_contain_text("已保存")
            expect(page.get_by_role("heading", level=1)).to_contain_text("第 2 版")

            # An extra closed day: added, shown in the month, removed.
            page.locator("#f-ov-o_day").fill("2026-12-01")
            page.locator("#f-ov-o_note").fill("系统割接")
            page.get_by_role("button", name="添加", exact=True).click()
            expect(page).to_have_url(re.compile(r"month=2026-12"))
            closed = page.locator('#month [data-day="2026-12-01"]')
            expect(closed).to_have_attribute("data-reason", "override_closed")
            expect(closed).to_contain_text("系统割接")
            expect(page.locator("#override-list")).to_contain_text("2026-12-01")
            shot(page, "04-closed-day")
            page.get_by_role("button", name="删除 2026-12-01").click()
            expect(page.locator('#month [data-day="2026-12-01"]')).to_have_attribute(
                "data-reason", "weekday"
            )
            expect(page.locator("#override-list")).to_have_count(0)

            # Giving the calendar to a unit lists it among its users.
            page.get_by_label("将此日历用于").select_option(label="杭州市分公司 · 市")
            page.get_by_role("button", name="指定", exact=True).click()
            expect(page.locator("#unit-list")).to_contain_text("杭州市分公司")

            # The same page in English.
            page.get_by_role("button", name="English").click()
            expect(page.locator('#month [data-day="2026-11-30"]')).to_contain_text("Working day")
            shot(page, "05-english")
            page.get_by_role("button", name="中文").click()
        finally:
            browser.close()


def test_calendar_copy_and_delete(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)

    def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
        page.screenshot(path=str(ARTIFACTS / f"calendars-copy-{name}.png"), full_page=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
            page = context.new_page()
            _sign_in(page, server, "/calendars")
            page.get_by_role("link", name="标准工作日历").click()
            expect(page.locator("#delete-form")).to_have_count(0)  # the default one stays
            copy = page.locator("#copy")
            copy.get_by_label("副本名称").fill("杭州备用日历")
            copy.get_by_role("button", name="复制", exact=True).click()
            expect(page.get_by_role("heading", level=1)).to_contain_text("杭州备用日历")
            expect(page.locator(".toast")).to_contain_text("已创建")
            shot(page, "01-copied")

            # In use by a unit: the delete is refused, naming it.
            page.get_by_label("将此日历用于").select_option(label="杭州市分公司 · 市")
            page.get_by_role("button", name="指定", exact=True).click()
            expect(page.locator("#unit-list")).to_contain_text("杭州市分公司")
            page.once("dialog", lambda d: d.accept())
            page.get_by_role("button", name="删除日历").click()
            expect(page.locator("#delete-error")).to_contain_text("杭州市分公司")
            shot(page, "02-refused")

            # Free again: a dismissed confirmation deletes nothing, an accepted one does.
            page.get_by_role("button", name="改为沿用上级日历").click()
            expect(page.locator("#unit-list")).to_have_count(0)
            asked: list[str] = []

            def dismiss(dialog) -> None:  # type: ignore[no-untyped-def]
                asked.append(dialog.message)
                dialog.dismiss()

            page.once("dialog", dismiss)
            page.get_by_role("button", name="删除日历").click()
            expect(page.get_by_role("heading", level=1)).to_contain_text("杭州备用日历")
            assert asked and "杭州备用日历" in asked[0]
            page.once("dialog", lambda d: d.accept())
            page.get_by_role("button", name="删除日历").click()
            expect(page).to_have_url(re.compile(r"/calendars\?notice=deleted"))
            expect(page.locator(".toast")).to_contain_text("已删除")
            expect(page.locator("#calendar-list")).not_to_contain_text("杭州备用日历")
            shot(page, "03-deleted")
        finally:
            browser.close()


def test_routing_rules_editing(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)

    def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
        page.screenshot(path=str(ARTIFACTS / f"routing-{name}.png"), full_page=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
            page = context.new_page()
            _sign_in(page, server, "/routing")
            expect(page.locator("#rules")).to_contain_text("没有规则")
            new = page.locator("#new-rule")
            # A function rule without its function is refused beside the field.
            new.get_by_label("类型").select_option("category_function")
            new.get_by_label("类别").select_option("fault_repair")
            new.get_by_role("button", name="添加到末尾").click()
            expect(page.locator("#f-new-function-error")).to_be_visible()
            new = page.locator("#new-rule")
            new.get_by_label("专业部门").select_option("technical")
            new.get_by_role("button", name="添加到末尾").click()
            expect(page.locator("#rules tbody tr")).to_have_count(1)
            new = page.locator("#new-rule")
            new.get_by_label("类型").select_option("site_region")
            new.get_by_label("类别").select_option("")
            new.get_by_label("专业部门").select_option("")
            new.get_by_label("备注").fill("上门服务就近")
            new.get_by_role("button", name="添加到末尾").click()
            expect(page.locator("#rules tbody tr")).to_have_count(2)

            # Test: an on-site repair for a Xihu customer at a site in Yuhang.
            test = page.locator("#test")
            test.get_by_label("客户").fill("西湖浏览器测试")
            test.get_by_label("类别").select_option("fault_repair")
            test.get_by_label("现场区域代码").fill("330110")
            test.get_by_role("button", name="测试", exact=True).click()
            # The function rule comes first: the nearest unit with technical support.
            expect(page.locator("#route-unit")).to_contain_text("杭州市分公司")
            shot(page, "01-function-first")

            # Move the site rule up: now the Yuhang unit serves it (linked service).
            page.get_by_role("button", name="上移规则 2").click()
            expect(page.locator("#rules tbody tr").first).to_contain_text("上门服务就近")
            # The page comes back with the same test, now decided by the site rule.
            expect(page.locator("#route-unit")).to_contain_text("余杭区支局")
            expect(page.locator("#route-unit")).to_contain_text("异地联动")
            expect(page.locator("#route-assignee")).not_to_contain_text("—")
            shot(page, "02-site-first")

            # Disable it: the trace says so, and the function rule decides again.
            page.locator("#rules tbody tr").first.get_by_role("button", name="停用").click()
            expect(page.locator("#rules tbody tr").first).to_contain_text("已停用")
            # "Test this rule" keeps the test on the page and marks the rule in the trace.
            page.locator("#rules tbody tr").first.get_by_role("link", name="测试此规则").click()
            expect(page.locator(".trace .is-current-row")).to_contain_text("已停用")
            expect(page.locator("#route-unit")).to_contain_text("杭州市分公司")
            shot(page, "03-disabled")
        finally:
            browser.close()
