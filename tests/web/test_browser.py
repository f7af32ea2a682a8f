"""A real browser against a real server: sign in, grow the tree, switch the language.

Runs uvicorn in a thread on its own SQLite file (commits are real, unlike the rolled-back
connection of the other tests) and drives Debian's chromium through Playwright.
Screenshots land in test-artifacts/ for people to look at.
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
from kefu.scope import SYSTEM
from kefu.staff import service as staff_service
from kefu.staff.schemas import StaffCreate
from kefu.units import service as unit_service
from kefu.units.schemas import UnitCreate
from tests.factories import PASSWORD
from tests.web.helpers import live_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    if not CHROMIUM.exists():
        pytest.skip("the browser test needs Debian's chromium at /usr/bin/chromium")

    url = "sqlite:///" + str(tmp_path / "browser.db")
    schema.upgrade(url)
    settings = Settings(
        database_url=url, data_dir=tmp_path / "var", secret_key="browser", embedded_worker=False
    )
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with unit_of_work(factory) as s:
        top = unit_service.create_unit(
            s, SYSTEM, UnitCreate(name="浙江省公司", region_code="330000")
        )
        city = unit_service.create_unit(
            s, SYSTEM, UnitCreate(name="杭州市分公司", region_code="330100", parent_id=top.id)
        )
        unit_service.create_unit(
            s, SYSTEM, UnitCreate(name="西湖区支局", region_code="330106", parent_id=city.id)
        )
        data = dict(username="admin", display_name="王管理", unit_id=top.id, roles=["admin"])
        staff_service.create_staff(s, SYSTEM, StaffCreate(**data, password=PASSWORD))  # type: ignore[arg-type]
    app = create_app(settings, factory)
    try:
        with live_server(app) as url:
            yield url
    finally:
        engine.dispose()
        use_settings(None)


def test_sign_in_create_a_unit_and_switch_language(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)

    def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
        page.screenshot(path=str(ARTIFACTS / f"browser-{name}.png"), full_page=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
            page = context.new_page()

            # Signed out: the page sends us to the login form, and back after it.
            page.goto(server + "/units")
            expect(page).to_have_url(re.compile(r"/login\?next=%2Funits$"))
            expect(page.get_by_role("heading", name="登录客服系统")).to_be_visible()
            page.get_by_label("用户名").fill("admin")
            page.get_by_label("密码").fill(PASSWORD)
            shot(page, "01-login")
            page.get_by_label("密码").press("Enter")  # forms submit with Enter
            expect(page).to_have_url(server + "/units")
            page.wait_for_load_state("load")  # htmx and kefu.js are deferred
            expect(page.get_by_role("heading", name="服务单位", exact=True)).to_be_visible()
            expect(page.locator(".who")).to_contain_text("王管理")

            # The tree: opening a branch loads its children (an HTMX fragment); closing hides them.
            toggle = page.get_by_role("button", name="展开或收起 杭州市分公司 的下级单位")
            county = page.get_by_role("link", name="西湖区支局")
            expect(county).to_have_count(0)
            toggle.click()
            expect(county).to_be_visible()
            shot(page, "02-tree-open")
            toggle.click()
            expect(county).to_be_hidden()

            # Create a unit under the city; it shows selected in the tree.
            page.get_by_role("link", name="杭州市分公司").click()
            expect(page.get_by_role("heading", level=1)).to_contain_text("杭州市分公司")
            page.locator("#add > summary").click()
            page.get_by_label("名称").last.fill("余杭区支局")
            region = page.locator("#f-add-region_code")
            region.fill("330110")
            region.press("Enter")
            expect(page.get_by_role("heading", level=1)).to_contain_text("余杭区支局")
            expect(page.locator("#tree [aria-current=page]")).to_have_text("余杭区支局")
            expect(page.locator("#tree")).to_contain_text("西湖区支局")  # its sibling, path open
            expect(page.locator(".toast-ok")).to_contain_text("已创建。")
            shot(page, "03-unit-created")

            # English, then back to Chinese; the page stays where it was (less the notice).
            here = page.url.split("?")[0]
            page.get_by_role("button", name="English").click()
            expect(page).to_have_url(here)
            expect(page.get_by_role("heading", name="Details")).to_be_visible()
            expect(page.locator(".sidenav")).to_contain_text("Units")
            expect(page.locator("h1 .tag-level")).to_have_text("county")
            expect(page.locator("html")).to_have_attribute("lang", "en")
            shot(page, "04-english")
            page.get_by_role("button", name="中文").click()
            expect(page.get_by_role("heading", name="基本信息")).to_be_visible()
            expect(page.locator("h1 .tag-level")).to_have_text("县")

            # "/" jumps to the search field of a list.
            page.get_by_role("link", name="员工", exact=True).click()
            expect(page).to_have_url(server + "/staff")
            page.wait_for_load_state("load")  # kefu.js is deferred
            page.keyboard.press("/")
            expect(page.get_by_label("搜索")).to_be_focused()
            shot(page, "05-staff")
        finally:
            browser.close()
