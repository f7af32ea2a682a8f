"""A real browser editing a ticket's custom fields on the ticket page (the inline error beside
the field, then a good save shown in the panel and the timeline), and the intake form that
brings up the fields of the category chosen (HTMX).

Like test_browser.py: uvicorn in a thread on its own SQLite file and Debian's chromium
through Playwright; screenshots land in test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kefu import schema
from kefu.app import create_app
from kefu.config import Settings, use_settings
from kefu.customers import service as customer_service
from kefu.customers.schemas import CustomerCreate
from kefu.db import make_engine, make_sessionmaker, unit_of_work
from kefu.scope import SYSTEM
from kefu.staff import service as staff_service
from kefu.staff.schemas import StaffCreate
from kefu.tickets import fields, service
from kefu.tickets.models import Category
from kefu.tickets.schemas import ChoiceIn, TicketCreate, TicketFieldCreate
from kefu.units import service as unit_service
from kefu.units.schemas import UnitCreate
from tests.factories import PASSWORD
from tests.web.helpers import live_server
from tests.web.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, int, int]]:
    if not CHROMIUM.exists():
        pytest.skip("the browser test needs Debian's chromium at /usr/bin/chromium")
    url = "sqlite:///" + str(tmp_path / "fields-browser.db")
    schema.upgrade(url)
    settings = Settings(
        database_url=url, data_dir=tmp_path / "var", secret_key="browser", embedded_worker=False
    )
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with unit_of_work(factory) as s:
        unit = unit_service.create_unit(
            s, SYSTEM, UnitCreate(name="西湖区支局", region_code="330106")
        )
        staff_service.create_staff(
            s,
            SYSTEM,
            StaffCreate(  # type: ignore[call-arg]
                username="agent.wang",
                display_name="王客服",
                unit_id=unit.id,
                roles=["agent"],
                password=PASSWORD,  # type: ignore[arg-type]
            ),
        )
        customer = customer_service.create_customer(
            s,
            SYSTEM,
            CustomerCreate(  # type: ignore[call-arg]
                name="杭州西湖电子有限公司", owning_unit_id=unit.id, region_code="330106"
            ),
        )
        s.add(
            Category(
                code="fibre_fault",
                parent_code="fault_repair",
                name_zh="光纤故障",
                name_en="Fibre fault",
                sort_order=99,
            )
        )
        s.flush()
        for spec in (
            TicketFieldCreate(
                key="line_id",
                label_zh="线路编号",
                label_en="Line ID",
                type="text",
                category_code="fault_repair",
                required=True,
            ),
            TicketFieldCreate(
                key="loss_db",
                label_zh="衰耗",
                label_en="Loss (dB)",
                type="number",
                category_code="fibre_fault",
                position=2,
            ),
            TicketFieldCreate(
                key="down_since",
                label_zh="中断日期",
                label_en="Down since",
                type="date",
                category_code="fibre_fault",
                position=3,
            ),
            TicketFieldCreate(
                key="fibre_kind",
                label_zh="光纤类型",
                label_en="Fibre kind",
                type="choice",
                category_code="fibre_fault",
                position=4,
                choices=[
                    ChoiceIn(value="sm", label_zh="单模", label_en="SM"),
                    ChoiceIn(value="mm", label_zh="多模", label_en="MM"),
                ],
            ),
        ):
            fields.create_definition(s, SYSTEM, spec)
        ticket = service.open_ticket(
            s,
            SYSTEM,
            TicketCreate(
                customer_id=customer.id,
                category_code="fibre_fault",
                subject="光缆中断",
                custom_fields={"line_id": "GZ-1", "loss_db": 3},
            ),
            channel="phone",
        )
        s.flush()
        ids = (ticket.id, customer.id)
    app = create_app(settings, factory)
    try:
        with live_server(app) as base:
            yield base, *ids
    finally:
        engine.dispose()
        use_settings(None)


def test_edit_custom_fields_on_the_ticket_page(server) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect, sync_playwright

    base, ticket_id, customer_id = server
    ARTIFACTS.mkdir(exist_ok=True)

    def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
        page.screenshot(path=str(ARTIFACTS / f"fields-{name}.png"), full_page=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(
                locale="zh-CN", viewport={"width": 1366, "height": 900}
            ).new_page()
            page.goto(f"{base}/tickets/{ticket_id}")
            page.get_by_label("用户名").fill("agent.wang")
            page.get_by_label("密码").fill(PASSWORD)
            page.get_by_label("密码").press("Enter")
            page.wait_for_load_state("load")
            panel = page.locator("#fields")
            expect(panel.locator("#fields-shown")).to_contain_text("GZ-1")
            expect(panel.locator("#fields-shown")).to_contain_text("衰耗")
            shot(page, "01-panel")

            # Open the editor; a value the server refuses comes back beside its field.
            panel.get_by_text("编辑字段").click()
            loss = panel.get_by_label("衰耗")
            expect(loss).to_have_value("3")
            loss.fill("1.23456")
            panel.get_by_role("button", name="保存字段").click()
            page.wait_for_load_state("load")
            error = page.locator("#f-cf-cf__loss_db-error")
            expect(error).to_have_text("衰耗必须是数字（最多 4 位小数）。")
            expect(page.locator("#fields-edit")).to_have_attribute("open", "")
            expect(page.get_by_label("衰耗")).to_have_value("1.23456")
            shot(page, "02-error")

            # A good save: the panel shows it, the timeline says what changed.
            page.get_by_label("衰耗").fill("4.5")
            page.get_by_label("中断日期").fill("2026-11-20")
            page.get_by_label("光纤类型").select_option("mm")
            page.get_by_role("button", name="保存字段").click()
            page.wait_for_load_state("load")
            expect(page.locator(".toast-ok")).to_contain_text("已保存")
            shown = page.locator("#fields-shown")
            expect(shown).to_contain_text("4.5")
            expect(shown).to_contain_text("多模")
            expect(shown).to_contain_text("2026-11-20")
            expect(page.locator("#timeline")).to_contain_text("衰耗 3 → 4.5")
            shot(page, "03-saved")

            # Intake: choosing the category brings up its fields (inherited ones first).
            page.goto(f"{base}/tickets/new?customer_id={customer_id}")
            page.wait_for_load_state("load")
            expect(page.locator("#intake-fields input")).to_have_count(0)
            page.get_by_label("类别").select_option("fibre_fault")
            expect(page.get_by_label("线路编号")).to_be_visible()
            expect(page.get_by_label("光纤类型")).to_be_visible()
            page.get_by_label("类别").select_option("other")
            expect(page.locator("#intake-fields input")).to_have_count(0)
            page.get_by_label("类别").select_option("fibre_fault")
            page.get_by_label("线路编号").fill("GZ-7")
            page.get_by_label("衰耗").fill("2")
            page.get_by_label("主题").fill("又断了")
            page.get_by_role("button", name="创建工单").click()
            page.wait_for_load_state("load")
            expect(page.locator("#fields-shown")).to_contain_text("GZ-7")
            shot(page, "04-intake")
        finally:
            browser.close()
