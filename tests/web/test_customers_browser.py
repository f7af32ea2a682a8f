"""A real browser on the customer pages: the list filtered by tier A, a 360° page with its
revenue chart, in Chinese and in English.

Like test_browser.py: uvicorn in a thread on its own SQLite file, filled by the demo
builders (the organisation and 300 customers with three years of revenue, tiered), and
Debian's chromium through Playwright. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from kefu import schema
from kefu.app import create_app
from kefu.config import Settings, use_settings
from kefu.db import make_engine, make_sessionmaker, unit_of_work
from kefu.demo import customers as demo_customers
from kefu.demo import organisation
from kefu.scope import SYSTEM
from tests.web.helpers import live_server
from tests.web.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    if not CHROMIUM.exists():
        pytest.skip("the browser test needs Debian's chromium at /usr/bin/chromium")

    url = "sqlite:///" + str(tmp_path / "customers-browser.db")
    schema.upgrade(url)
    settings = Settings(
        database_url=url, data_dir=tmp_path / "var", secret_key="browser", embedded_worker=False
    )
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with unit_of_work(factory) as s:
        organisation.build(s, SYSTEM, progress=lambda _: None)
        demo_customers.build(s, SYSTEM, count=300, progress=lambda _: None)
    app = create_app(settings, factory)
    try:
        with live_server(app) as url:
            yield url
    finally:
        engine.dispose()
        use_settings(None)


def test_customer_list_filter_and_360_page(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)

    def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
        page.screenshot(path=str(ARTIFACTS / f"customers-{name}.png"), full_page=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
            page = context.new_page()
            page.goto(server + "/customers")
            page.get_by_label("用户名").fill("admin")
            page.get_by_label("密码").fill(organisation.DEMO_PASSWORD)
            page.get_by_label("密码").press("Enter")
            expect(page).to_have_url(server + "/customers")
            page.wait_for_load_state("load")  # htmx and kefu.js are deferred
            expect(page.get_by_role("heading", level=1, name="客户", exact=True)).to_be_visible()
            rows = page.locator("#results tbody tr")
            expect(rows).to_have_count(50)  # a full page, then "next page"
            expect(page.locator(".sidenav [aria-current=page]")).to_have_text("客户档案")
            shot(page, "01-list")

            # Filtering by tier swaps the results in place (HTMX) and keeps the URL in step.
            page.get_by_label("客户等级").select_option("A")
            expect(page).to_have_url(re.compile(r"tier=A"))
            expect(page.locator("#results tbody tr .tier").first).to_have_text("A")
            tiers = page.locator("#results tbody tr td:nth-child(3) .tier").all_inner_texts()
            assert tiers and set(tiers) == {"A"}
            page.get_by_label("排序").select_option("revenue")
            expect(page).to_have_url(re.compile(r"sort=revenue"))
            shot(page, "02-tier-a")

            # The 360° page of the customer with the most revenue.
            first = page.locator("#results tbody tr a").first
            name = first.inner_text()
            first.click()
            expect(page.get_by_role("heading", level=1)).to_contain_text(name)
            chart = page.locator("svg.chart")
            expect(chart).to_be_visible()
            assert chart.locator("rect.chart-bar").count() == 36
            expect(chart.locator("title").first).to_contain_text("月度收入")
            expect(page.locator("#tier .tier-why")).to_contain_text("A —")
            box = chart.bounding_box()
            assert box is not None and box["width"] > 500 and box["height"] > 140
            expect(page.locator("#contacts tbody tr").first).to_be_visible()
            shot(page, "03-360")

            # Editing a contact opens in place (an HTMX fragment), then cancels.
            page.locator("#contacts").get_by_role("link", name="编辑").first.click()
            expect(page.locator("#contacts tr.editing form")).to_be_visible()
            shot(page, "04-contact-edit")

            # The same page in English.
            page.get_by_role("button", name="English").click()
            expect(page.get_by_role("heading", name="Revenue", exact=True)).to_be_visible()
            expect(page.locator("svg.chart title").first).to_contain_text("Revenue by month")
            expect(page.locator("#tier .tier-why")).to_contain_text("cumulative revenue share")
            shot(page, "05-360-english")
            page.get_by_role("button", name="中文").click()
            expect(page.get_by_role("heading", name="收入", exact=True)).to_be_visible()
        finally:
            browser.close()


def test_tiering_and_service_level_pages(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)

    def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
        page.screenshot(path=str(ARTIFACTS / f"customers-{name}.png"), full_page=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
            page = context.new_page()
            page.goto(server + "/tiering")
            page.get_by_label("用户名").fill("admin")
            page.get_by_label("密码").fill(organisation.DEMO_PASSWORD)
            page.get_by_label("密码").press("Enter")
            expect(page).to_have_url(server + "/tiering")
            expect(page.locator("#runs tbody tr")).to_have_count(1)  # the demo's applied run
            shot(page, "06-tiering")

            # Preview a stricter top band: the summary shows, nothing is saved.
            page.get_by_role("link", name="编辑规则").click()
            page.get_by_label("高价值段：累计占比（%）").fill("50")
            page.get_by_role("button", name="预览").click()
            expect(page.locator("#preview")).to_be_visible()
            expect(page.locator("#preview .matrix")).to_be_visible()
            shot(page, "07-preview")

            # A dry run, its summary and proposals.
            page.goto(server + "/tiering")
            page.get_by_role("button", name="开始试运行").click()
            expect(page.get_by_role("heading", level=1)).to_contain_text("分级运行")
            expect(page.locator("#results tbody tr").first).to_be_visible()
            shot(page, "08-run")

            page.goto(server + "/service-levels")
            expect(page.locator(".level-card")).to_have_count(5)
            shot(page, "09-service-levels")
            page.goto(server + "/service-levels/4A")
            page.locator("#edit > summary").click()
            page.locator("#f-sl-t_urgent_first_h").fill("9")  # after the resolution: refused
            page.get_by_role("button", name="保存为新版本").click()
            expect(page.locator("#f-sl-t_urgent-error")).to_contain_text(
                "首次响应时限不能晚于解决时限"
            )
            shot(page, "10-service-level-edit")
        finally:
            browser.close()
