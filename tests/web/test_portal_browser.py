"""The customer portal in a real browser on a phone-sized screen: the invitation link, sign
in and out, submitting a request with a file and the category's custom field, following it
and replying.

Runs uvicorn in a thread on its own SQLite file (commits are real) and drives Debian's
chromium through Playwright. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from kefu import schema
from kefu.app import create_app
from kefu.config import Settings, use_settings
from kefu.customers import service as customer_service
from kefu.customers.schemas import ContactCreate, CustomerCreate
from kefu.db import make_engine, make_sessionmaker, unit_of_work
from kefu.portal import service as portal
from kefu.scope import SYSTEM
from kefu.staff import service as staff_service
from kefu.staff.schemas import StaffCreate
from kefu.tickets import fields
from kefu.tickets import service as tickets
from kefu.tickets.models import Ticket
from kefu.tickets.schemas import MessageIn, TicketFieldCreate
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
PORTAL_PASSWORD = "门户密码 2026"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@dataclass
class Served:
    url: str
    factory: object
    link: str


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    if not CHROMIUM.exists():
        pytest.skip("the browser test needs Debian's chromium at /usr/bin/chromium")
    url = "sqlite:///" + str(tmp_path / "portal.db")
    schema.upgrade(url)
    settings = Settings(
        database_url=url, data_dir=tmp_path / "var", secret_key="browser", embedded_worker=False
    )
    use_settings(settings)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with unit_of_work(factory) as s:
        county = unit_service.create_unit(
            s, SYSTEM, UnitCreate(name="西湖区支局", region_code="330106")
        )
        staff_service.create_staff(
            s,
            SYSTEM,
            StaffCreate(
                username="agent",
                display_name="李客服",
                unit_id=county.id,
                roles=["agent"],
                password=PASSWORD,
            ),  # type: ignore[arg-type]
        )
        customer = customer_service.create_customer(
            s,
            SYSTEM,
            CustomerCreate(name="西湖茶业有限公司", owning_unit_id=county.id, region_code="330106"),  # type: ignore[call-arg]
        )
        contact = customer_service.add_contact(
            s,
            SYSTEM,
            customer.id,
            ContactCreate(
                name="陈女士", email="chen@xihu-tea.cn", phone="13800001111", portal_access=True
            ),  # type: ignore[call-arg]
        )
        made = portal.invite(s, SYSTEM, customer.id, contact.id)
        token = made.token
        # The category asks for its machine's number (required of staff, not of customers).
        fields.create_definition(
            s,
            SYSTEM,
            TicketFieldCreate(
                key="machine_no",
                label_zh="设备编号",
                label_en="Machine number",
                type="text",
                category_code="fault_repair",
                required=True,
            ),  # type: ignore[call-arg]
        )
    app = create_app(settings, factory)
    try:
        with live_server(app) as base:
            yield Served(base, factory, f"{base}/portal/welcome/{token}")
    finally:
        engine.dispose()
        use_settings(None)


def test_invitation_sign_in_submit_follow_and_reply_on_a_phone(served: Served) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    upload = ARTIFACTS / "portal-upload.png"
    upload.write_bytes(PNG)

    def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
        page.screenshot(path=str(ARTIFACTS / f"portal-{name}.png"), full_page=True)

    def fits(page) -> None:  # type: ignore[no-untyped-def]
        # Nothing wider than the phone's screen: no sideways scrolling.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                locale="zh-CN",
                viewport={"width": 390, "height": 844},
                is_mobile=True,
                has_touch=True,
            )
            page = context.new_page()

            # The invitation link: set a password, and be signed in.
            page.goto(served.link)
            expect(page.get_by_role("heading", name="欢迎您，陈女士")).to_be_visible()
            page.get_by_label("新密码").fill(PORTAL_PASSWORD)
            page.get_by_label("再次输入密码").fill(PORTAL_PASSWORD)
            fits(page)
            shot(page, "01-welcome")
            page.get_by_role("button", name="设置密码并登录").click()
            expect(page).to_have_url(re.compile(r"/portal\?notice=welcome$"))
            expect(page.get_by_role("heading", name="我的服务请求")).to_be_visible()
            expect(page.locator(".portal-who")).to_contain_text("西湖茶业有限公司")

            # Submit a request with a photo; the category's own question appears on choosing it.
            page.get_by_role("link", name="新建请求").first.click()
            expect(page.get_by_label("设备编号")).to_have_count(0)
            page.get_by_label("请求类别").select_option("fault_repair")
            expect(page.get_by_label("设备编号")).to_be_visible()
            page.get_by_label("设备编号").fill("FJ-2024-0031")
            page.get_by_label("主题").fill("茶叶分拣机不启动")
            page.get_by_label("说明").fill("按下电源键没有反应。\n指示灯不亮。")
            page.get_by_label("附件").set_input_files(str(upload))
            fits(page)
            shot(page, "02-new")
            page.get_by_role("button", name="提交").click()
            expect(page.locator(".toast-ok")).to_contain_text("您的请求已提交。")
            expect(page.get_by_role("heading", name="茶叶分拣机不启动")).to_be_visible()
            expect(page.locator("#thread")).to_contain_text("指示灯不亮")
            expect(page.locator("#thread")).to_contain_text("portal-upload.png")
            expect(page.locator("#ticket-state")).to_have_text("已受理")
            fits(page)
            shot(page, "03-submitted")
            ticket_id = int(page.url.split("/portal/tickets/")[1].split("?")[0])

            # The service team answers (and writes a note the customer never sees).
            with unit_of_work(served.factory) as s:  # type: ignore[arg-type]
                agent = tickets.get_ticket(s, SYSTEM, ticket_id)
                assert agent.channel == "portal"
                assert agent.custom_fields == {"machine_no": "FJ-2024-0031"}
                tickets.add_message(
                    s, SYSTEM, ticket_id, MessageIn(body="内部：可能是保险丝", internal=True)
                )
                tickets.add_message(s, SYSTEM, ticket_id, MessageIn(body="请检查保险丝是否熔断。"))
                tickets.change_state(s, SYSTEM, s.get(Ticket, ticket_id), "pending")
            page.reload()
            expect(page.locator("#thread")).to_contain_text("请检查保险丝是否熔断。")
            expect(page.locator("#thread")).not_to_contain_text("可能是保险丝")
            expect(page.locator("#ticket-state")).to_have_text("等待您的答复")

            # The contact replies; the ticket is in progress again.
            page.get_by_label("您的留言").fill("保险丝换了，现在可以启动了。")
            page.get_by_role("button", name="发送").click()
            expect(page.locator(".toast-ok")).to_contain_text("您的回复已发送。")
            expect(page.locator(".msg-mine").last).to_contain_text("保险丝换了")
            expect(page.locator("#ticket-state")).to_have_text("处理中")
            fits(page)
            shot(page, "04-replied")
            with unit_of_work(served.factory) as s:  # type: ignore[arg-type]
                state = s.scalar(select(Ticket.state).where(Ticket.id == ticket_id))
            assert state == "open"

            # The list shows it; English follows the switch; sign out, and in with the phone.
            page.get_by_role("link", name="我的服务请求").click()
            expect(page.locator("#requests")).to_contain_text("茶叶分拣机不启动")
            page.get_by_role("button", name="English").click()
            expect(page.get_by_role("heading", name="Your requests")).to_be_visible()
            page.get_by_role("button", name="Sign out").click()
            expect(page).to_have_url(re.compile(r"/portal/login$"))
            page.get_by_label("E-mail address or mobile phone").fill("138 0000 1111")
            page.get_by_label("Password").fill(PORTAL_PASSWORD)
            page.get_by_label("Password").press("Enter")
            expect(page.get_by_role("heading", name="Your requests")).to_be_visible()
            fits(page)
            shot(page, "05-english")
        finally:
            browser.close()
