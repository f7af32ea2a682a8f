"""The public survey on a phone screen, and the satisfaction page, in a real chromium."""

from __future__ import annotations

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
from kefu.surveys import service as surveys
from kefu.surveys.schemas import InvitationIn
from kefu.tickets import service as tickets
from kefu.tickets.schemas import TicketCreate
from kefu.units import service as unit_service
from kefu.units.schemas import UnitCreate
from tests.factories import PASSWORD, make_customer
from tests.web.helpers import live_server
from tests.web.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    if not CHROMIUM.exists():
        pytest.skip("the browser test needs Debian's chromium at /usr/bin/chromium")
    url = "sqlite:///" + str(tmp_path / "browser.db")
    schema.upgrade(url)
    settings = Settings(
        database_url=url, data_dir=tmp_path / "var", secret_key="browser", embedded_worker=False
    )
    use_settings(settings)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    tokens = []
    with unit_of_work(factory) as s:
        top = unit_service.create_unit(
            s, SYSTEM, UnitCreate(name="浙江省公司", region_code="330000")
        )
        data = dict(username="admin", display_name="王管理", unit_id=top.id, roles=["admin"])
        staff_service.create_staff(s, SYSTEM, StaffCreate(**data, password=PASSWORD))  # type: ignore[arg-type]
        customer = make_customer(s, top, "杭州西湖电子有限公司")
        for _ in range(2):
            t = tickets.open_ticket(
                s,
                SYSTEM,
                TicketCreate(
                    customer_id=customer.id, category_code="fault_repair", subject="宽带故障"
                ),
                channel="phone",
            )
            tickets.change_state(s, SYSTEM, t, "resolved")
            tokens.append(surveys.invite(s, SYSTEM, InvitationIn(ticket_id=t.id))[1])
    app = create_app(settings, factory)
    try:
        with live_server(app) as base:
            yield base, tokens
    finally:
        engine.dispose()
        use_settings(None)


def test_answer_a_survey_on_a_phone_then_see_it_in_the_report(server) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, tokens = server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            phone = browser.new_context(
                locale="zh-CN",
                viewport={"width": 390, "height": 844},
                is_mobile=True,
                has_touch=True,
            )
            page = phone.new_page()
            page.goto(f"{base}/s/{tokens[0]}")
            expect(page.get_by_role("heading", name="满意度调查")).to_be_visible()
            # Nothing chosen: the page comes back with each missing score marked.
            page.get_by_role("button", name="提交").click()
            expect(page.locator(".field-error").first).to_be_visible()
            for group in page.locator(".scale").all():
                group.locator(".scale-option").nth(5).click()  # 6 of 7
            page.locator("#f-answer-csat .scale-option").nth(3).click()  # 4
            page.locator("#f-answer-nps .scale-option").nth(9).click()  # 9
            page.get_by_label("还有什么想告诉我们的吗？").fill("工程师上门很及时")
            # Seven choices fit a phone's width in one row, each large enough for a thumb.
            first = page.locator("#f-answer-e_reliability .scale-option span")
            boxes = [first.nth(i).bounding_box() for i in range(7)]
            assert all(b and b["width"] >= 36 and b["height"] >= 44 for b in boxes)
            assert len({round(b["y"]) for b in boxes if b}) == 1
            page.screenshot(path=str(ARTIFACTS / "survey-phone.png"), full_page=True)
            page.get_by_role("button", name="提交").click()
            expect(page.get_by_role("heading", name="谢谢！")).to_be_visible()
            page.goto(f"{base}/s/{tokens[0]}")
            expect(page.get_by_text("此调查已经填写过了")).to_be_visible()

            desk = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
            page = desk.new_page()
            page.goto(base + "/satisfaction")
            page.get_by_label("用户名").fill("admin")
            page.get_by_label("密码").fill(PASSWORD)
            page.get_by_label("密码").press("Enter")
            expect(page.get_by_role("heading", name="满意度：浙江省公司")).to_be_visible()
            expect(page.locator("#kpi-index")).to_have_text("100.0")
            page.screenshot(path=str(ARTIFACTS / "satisfaction.png"), full_page=True)
        finally:
            browser.close()
