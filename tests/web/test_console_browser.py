"""A real browser in the agent console: save and share a view from the sidebar, bulk-assign
and be refused whole, insert a standard phrase at the cursor, read the customer context.

Like test_browser.py: uvicorn in a thread on its own SQLite file, Debian's chromium through
Playwright. Screenshots land in test-artifacts/; with KEFU_DOCS_SCREENSHOTS=1 the two that
docs/tickets.md shows are written to docs/screenshots/ instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kefu import clock, schema
from kefu.app import create_app
from kefu.config import Settings, use_settings
from kefu.customers import service as customer_service
from kefu.customers.models import Customer
from kefu.customers.schemas import ContactCreate, CustomerCreate
from kefu.db import make_engine, make_sessionmaker, unit_of_work
from kefu.knowledge import service as phrases
from kefu.knowledge.schemas import PhraseCreate
from kefu.scope import SYSTEM
from kefu.staff import service as staff_service
from kefu.staff.schemas import StaffCreate
from kefu.tickets import fields
from kefu.tickets import service as tickets
from kefu.tickets.schemas import ChoiceIn, TicketCreate, TicketFieldCreate
from kefu.units import service as unit_service
from kefu.units.schemas import UnitCreate
from tests.factories import PASSWORD
from tests.web.helpers import live_server
from tests.web.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

# (customer, tier, level, subject, priority, category, hours ago)
TICKETS = [
    (
        "杭州西湖电子有限公司",
        "A",
        "5A",
        "专线中断，营业厅无法办理业务",
        "urgent",
        "fault_repair",
        3,
    ),
    ("杭州西湖电子有限公司", "A", "5A", "申请增加一条 100M 专线", "normal", "consultation", 30),
    ("浙江钱塘物流集团", "A", "4A", "机房空调告警，需上门检查", "high", "installation", 6),
    ("浙江钱塘物流集团", "A", "4A", "发票抬头需要变更", "low", "other", 50),
    ("西溪湿地文旅公司", "B", "3A", "门户网站访问缓慢", "high", "technical_support", 2),
    ("西溪湿地文旅公司", "B", "3A", "对上月账单有疑问", "normal", "complaint", 26),
    ("龙井茶业合作社", "C", "2A", "宽带报障：间歇断线", "normal", "fault_repair", 1),
    ("龙井茶业合作社", "C", "2A", "咨询云桌面套餐", "low", "consultation", 0.5),
]

TAGS = {"专线中断，营业厅无法办理业务": ["重保"], "门户网站访问缓慢": ["重保"]}
CUSTOM = {
    "专线中断，营业厅无法办理业务": {"fault_kind": "line"},
    "宽带报障：间歇断线": {"fault_kind": "power"},
}


def _staff(s: Any, unit_id: int, username: str, name: str, roles: list[str]) -> int:
    data = StaffCreate(  # type: ignore[call-arg]
        username=username,
        display_name=name,
        unit_id=unit_id,
        roles=roles,
        password=PASSWORD,  # type: ignore[arg-type]
    )
    return staff_service.create_staff(s, SYSTEM, data).id


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    if not CHROMIUM.exists():
        pytest.skip("the browser test needs Debian's chromium at /usr/bin/chromium")
    url = "sqlite:///" + str(tmp_path / "console-browser.db")
    schema.upgrade(url)
    settings = Settings(
        database_url=url, data_dir=tmp_path / "var", secret_key="browser", embedded_worker=False
    )
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    real_now = datetime.now(UTC)
    ids: dict[str, Any] = {"tickets": {}}
    with unit_of_work(factory) as s:
        province = unit_service.create_unit(
            s, SYSTEM, UnitCreate(name="浙江省公司", region_code="330000")
        )
        city = unit_service.create_unit(
            s, SYSTEM, UnitCreate(name="杭州市分公司", region_code="330100", parent_id=province.id)
        )
        county = unit_service.create_unit(
            s, SYSTEM, UnitCreate(name="西湖区支局", region_code="330106", parent_id=city.id)
        )
        ids["county"] = county.id
        _staff(s, county.id, "lead.chen", "陈主管", ["supervisor", "agent"])
        ids["wang"] = _staff(s, county.id, "agent.wang", "王客服", ["agent"])
        ids["li"] = _staff(s, county.id, "agent.li", "李客服", ["agent"])
        hall = unit_service.create_unit(
            s, SYSTEM, UnitCreate(name="文三路营业厅", region_code="330106", parent_id=county.id)
        )
        ids["hall"] = hall.id
        _staff(s, hall.id, "agent.zhao", "赵客服", ["agent"])
        fields.create_definition(
            s,
            SYSTEM,
            TicketFieldCreate(
                key="fault_kind",
                label_zh="故障类型",
                label_en="Kind of fault",
                type="choice",
                category_code="fault_repair",
                choices=[
                    ChoiceIn(value="line", label_zh="线路", label_en="Line"),
                    ChoiceIn(value="power", label_zh="电源", label_en="Power"),
                ],
            ),
        )
        customers: dict[str, Customer] = {}
        contacts: dict[str, int] = {}
        for name, tier, level, subject, priority, category, hours in TICKETS:
            if name not in customers:
                c = customer_service.create_customer(
                    s,
                    SYSTEM,
                    CustomerCreate(  # type: ignore[call-arg]
                        name=name, owning_unit_id=county.id, region_code="330106"
                    ),
                )
                c.tier, c.service_level = tier, level
                c.account_manager_id = ids["wang"] if tier == "A" else None
                contact = customer_service.add_contact(
                    s, SYSTEM, c.id, ContactCreate(name=f"{name[:2]}张经理")
                )
                customers[name], contacts[name] = c, contact.id
                s.flush()
            c = customers[name]
            clock.set_now(lambda h=hours: real_now - timedelta(hours=h))
            t = tickets.open_ticket(
                s,
                SYSTEM,
                TicketCreate(
                    customer_id=c.id,
                    contact_id=contacts[name],
                    category_code=category,
                    subject=subject,
                    priority=priority,
                    tags=TAGS.get(subject, []),
                    custom_fields=CUSTOM.get(subject, {}),
                ),
                channel="phone",
            )
            s.flush()
            ids["tickets"][subject] = t.id
        clock.set_now(None)
        phrases.create_phrase(
            s,
            SYSTEM,
            PhraseCreate(
                kind="global",
                title="受理确认",
                body="{contact}您好，您的工单 {ticket_number} 已由{agent}受理，"
                "我们将在 {due} 前处理完毕。",
            ),
        )
    app = create_app(settings, factory)
    try:
        with live_server(app) as base:
            yield {"base": base, **ids}
    finally:
        clock.set_now(None)
        engine.dispose()
        use_settings(None)


def test_views_bulk_phrases_and_context(server) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect, sync_playwright

    base = server["base"]
    ARTIFACTS.mkdir(exist_ok=True)
    to_docs = os.environ.get("KEFU_DOCS_SCREENSHOTS") == "1"

    def shot(page, name: str, docs: bool = False) -> None:  # type: ignore[no-untyped-def]
        if docs and to_docs:
            DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(DOCS_SHOTS / f"{name}.png"), full_page=False)
        else:
            page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1440, "height": 900}
            )
            page = context.new_page()
            page.goto(f"{base}/tickets?view=unit")
            page.get_by_label("用户名").fill("lead.chen")
            page.get_by_label("密码").fill(PASSWORD)
            page.get_by_label("密码").press("Enter")
            page.wait_for_load_state("load")
            rows = page.locator("#results table.tickets tbody tr")
            expect(rows).to_have_count(len(TICKETS))
            expect(page.locator(".console-views [aria-current=page]")).to_have_text("本单位队列")
            # Live timers: kefu.js rewrote each server-rendered H:MM.
            expect(page.locator(".sla[data-due]").first).to_have_text(re.compile(r"^−?\d+:\d\d$"))
            shot(page, "console-queue", docs=True)

            # A view: filter on several priorities at once (each tick: HTMX swaps the list),
            # save it shared with the county.
            priority = page.locator("#f-filter-priority")
            priority.locator("summary").click()
            priority.get_by_role("checkbox", name="紧急", exact=True).check()
            expect(rows).to_have_count(1)
            priority.get_by_role("checkbox", name="高", exact=True).check()
            expect(rows).to_have_count(3)  # one urgent, two high
            expect(priority.locator("summary")).to_have_text("紧急, 高")
            expect(page).to_have_url(re.compile(r"priority=urgent&priority=high"))
            page.locator("h1").click()  # a click elsewhere folds the ticks
            expect(priority.get_by_role("checkbox", name="高", exact=True)).to_be_hidden()
            page.locator("details.save-view > summary").click()
            page.locator("#f-saveview-name").fill("紧急和高")
            page.locator("#f-saveview-unit_id").select_option(str(server["county"]))
            page.get_by_role("button", name="另存为新视图").click()
            page.wait_for_load_state("load")
            current = page.locator("#shared-views [aria-current=page]")
            expect(current).to_have_text("紧急和高")
            expect(rows).to_have_count(3)
            expect(page.locator("#f-filter-priority summary")).to_have_text("紧急, 高")
            # Back to the unit queue through the sidebar, then choose the view again.
            page.locator(".console-views").get_by_role("link", name="本单位队列").click()
            expect(rows).to_have_count(len(TICKETS))
            page.locator("#shared-views").get_by_role("link", name="紧急和高").click()
            expect(rows).to_have_count(3)
            # Narrowed further: new or in progress, and only the A tier.
            state = page.locator("#f-filter-state")
            state.locator("summary").click()
            state.get_by_role("checkbox", name="新建", exact=True).check()
            expect(rows).to_have_count(3)
            state.get_by_role("checkbox", name="新建", exact=True).uncheck()
            state.get_by_role("checkbox", name="已解决", exact=True).check()
            expect(page.locator("#results .empty")).to_be_visible()
            state.get_by_role("checkbox", name="已解决", exact=True).uncheck()
            expect(state.locator("summary")).to_have_text("全部未结")
            page.locator("#f-filter-tier summary").click()
            page.locator("#f-filter-tier").get_by_role("checkbox", name="A", exact=True).check()
            expect(rows).to_have_count(2)
            expect(rows.first).to_contain_text("专线中断")
            shot(page, "01-view")

            # Tag and custom field: the fields offered follow the category ticked; the value
            # is asked as the field's type asks it (here: its choices).
            page.locator(".console-views").get_by_role("link", name="本单位队列").click()
            expect(rows).to_have_count(len(TICKETS))
            page.locator("#f-filter-tag").fill("重保")
            page.locator("#f-filter-tag").press("Tab")
            expect(rows).to_have_count(2)
            page.locator("#f-filter-tag").fill("")
            page.locator("#f-filter-tag").press("Tab")
            expect(rows).to_have_count(len(TICKETS))
            key = page.locator("#f-filter-ff_key")
            expect(key.locator("option", has_text="故障类型")).to_have_count(1)
            page.locator("#f-filter-category summary").click()
            page.locator("#f-filter-category").get_by_role(
                "checkbox", name="安装开通", exact=True
            ).check()
            expect(key.locator("option", has_text="故障类型")).to_have_count(0)
            page.locator("#f-filter-category").get_by_role(
                "checkbox", name="安装开通", exact=True
            ).uncheck()
            page.locator("#f-filter-category").get_by_role(
                "checkbox", name="故障报修", exact=True
            ).check()
            expect(rows).to_have_count(2)
            page.locator("h1").click()
            page.locator("#f-filter-ff_key").select_option(label="故障类型")
            page.locator("#f-filter-ff_value").select_option(label="线路")
            expect(rows).to_have_count(1)
            page.locator("#field_filter").get_by_role("button", name="添加").click()
            chip = page.locator("#field_filter .chip")
            expect(chip).to_have_text("故障类型 = 线路")
            expect(page.locator("#f-filter-ff_value")).to_have_value("")
            expect(rows).to_have_count(1)
            shot(page, "01b-field-filter")
            chip.locator("input").uncheck()
            expect(rows).to_have_count(2)
            chip.locator("input").check()
            expect(rows).to_have_count(1)
            page.locator("details.save-view > summary").click()
            page.locator("#f-saveview-name").fill("专线故障")
            page.get_by_role("button", name="另存为新视图").click()
            page.wait_for_load_state("load")
            expect(page.locator("#personal-views [aria-current=page]")).to_have_text("专线故障")
            expect(rows).to_have_count(1)
            expect(page.locator("#field_filter .chip")).to_have_text("故障类型 = 线路")

            # Bulk: tick two tickets, assign them to 李客服.
            page.locator(".console-views").get_by_role("link", name="本单位队列").click()
            expect(rows).to_have_count(len(TICKETS))
            picks = page.locator("#results input[data-pick]")
            picks.nth(0).check()
            picks.nth(1).check()
            expect(page.locator("[data-bulk-count] b")).to_have_text("2")
            page.locator("#f-bulk-action").select_option("assign")
            page.locator("#f-bulk-assignee_id").select_option(str(server["li"]))
            page.locator("#f-bulk-reason").fill("早班分派")
            page.get_by_role("button", name="应用到所选工单").click()
            page.wait_for_load_state("load")
            expect(page.locator(".toast-ok")).to_contain_text("所选工单均已更改")
            expect(rows.nth(0)).to_contain_text("李客服")
            expect(rows.nth(1)).to_contain_text("李客服")

            # All or nothing: closing open tickets is not a move the state machine allows.
            page.locator("[data-pick-all]").check()
            expect(page.locator("[data-bulk-count] b")).to_have_text(str(len(TICKETS)))
            page.locator("#f-bulk-action").select_option("state")
            expect(page.locator("#f-bulk-assignee_id")).to_be_hidden()
            page.locator("#f-bulk-state").select_option("closed")
            page.get_by_role("button", name="应用到所选工单").click()
            page.wait_for_load_state("load")
            report = page.locator("#bulk-report")
            expect(report).to_contain_text("未做任何更改")
            expect(report.locator("p")).to_have_count(len(TICKETS))
            expect(report.locator("p").first).to_contain_text("新建")  # states by name
            expect(page.locator("#results input[data-pick]:checked")).to_have_count(len(TICKETS))
            shot(page, "02-bulk-refused")

            # Bulk transfer to another unit: a reason is required (refused whole without it),
            # then each ticket goes to the unit's least-loaded agent.
            page.locator(".console-views").get_by_role("link", name="本单位队列").click()
            expect(rows).to_have_count(len(TICKETS))
            picks = page.locator("#results input[data-pick]")
            picks.nth(2).check()
            picks.nth(3).check()
            moved = [
                rows.nth(2).locator("code").inner_text(),
                rows.nth(3).locator("code").inner_text(),
            ]
            page.locator("#f-bulk-action").select_option("transfer")
            expect(page.locator("#f-bulk-state")).to_be_hidden()
            expect(page.locator("#f-bulk-unit_id")).to_be_visible()
            expect(page.locator("#f-bulk-assignee_id")).to_be_visible()
            page.locator("#f-bulk-unit_id").select_option(str(server["hall"]))
            page.get_by_role("button", name="应用到所选工单").click()
            page.wait_for_load_state("load")
            expect(page.locator("#bulk-report")).to_be_visible()
            expect(page.locator("#f-bulk-reason")).to_have_attribute("aria-invalid", "true")
            expect(page.locator("#results input[data-pick]:checked")).to_have_count(2)
            expect(page.locator("#f-bulk-unit_id")).to_have_value(str(server["hall"]))
            expect(page.locator("#f-bulk-action")).to_have_value("transfer")
            expect(page.locator("#f-bulk-state")).to_be_hidden()
            page.locator("#f-bulk-reason").fill("营业厅上门处理")
            page.get_by_role("button", name="应用到所选工单").click()
            page.wait_for_load_state("load")
            expect(page.locator(".toast-ok")).to_contain_text("所选工单均已更改")
            for number in moved:
                row = rows.filter(has_text=number)
                expect(row).to_contain_text("赵客服")
            shot(page, "02b-bulk-transfer")

            # The ticket page: a phrase goes in at the cursor, filled in by the server.
            tid = server["tickets"]["专线中断，营业厅无法办理业务"]
            page.goto(f"{base}/tickets/{tid}")
            page.wait_for_load_state("load")
            reply = page.locator("#f-reply-body")
            reply.fill("（开头）")
            reply.press("End")
            page.locator("#f-phrase").select_option(label="受理确认")
            expect(reply).to_have_value(
                re.compile(r"^（开头）杭州张经理您好，您的工单 T\d{4}-\d{7} 已由陈主管受理")
            )
            expect(page.locator("#f-phrase")).to_have_value("")
            context_panel = page.locator("#context")
            expect(context_panel).to_contain_text("杭州西湖电子有限公司")
            expect(context_panel).to_contain_text("5A")
            expect(context_panel).to_contain_text("王客服")
            expect(context_panel.locator("#cc-open li")).to_have_count(1)
            expect(context_panel.locator("#cc-satisfaction")).to_have_text("—")
            shot(page, "console-ticket", docs=True)
            shot(page, "03-ticket")
        finally:
            browser.close()
