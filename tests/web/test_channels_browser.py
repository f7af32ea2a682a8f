"""A real browser: the bell counts unread notices and leads to them; an admin retries a dead
letter from the delivery log and the receiver (a real server on 127.0.0.1) gets it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kefu import schema
from kefu.app import create_app
from kefu.channels import service as channel_service
from kefu.channels.schemas import WebhookIn
from kefu.config import Settings, use_settings
from kefu.db import make_engine, make_sessionmaker, unit_of_work
from kefu.jobs import deliver
from kefu.notifications.service import notify
from kefu.scope import SYSTEM
from kefu.staff import service as staff_service
from kefu.staff.schemas import StaffCreate
from kefu.units import service as unit_service
from kefu.units.schemas import UnitCreate
from tests.channels.receiver import Receiver
from tests.factories import PASSWORD
from tests.web.helpers import live_server
from tests.web.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    if not CHROMIUM.exists():
        pytest.skip("the browser test needs Debian's chromium at /usr/bin/chromium")
    url = "sqlite:///" + str(tmp_path / "browser.db")
    schema.upgrade(url)
    settings = Settings(
        database_url=url,
        data_dir=tmp_path / "var",
        secret_key="browser",
        embedded_worker=False,
        webhook_allow_private_targets=True,
    )
    use_settings(settings)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    receiver = Receiver().start()
    receiver.status = 503
    with unit_of_work(factory) as s:
        top = unit_service.create_unit(
            s, SYSTEM, UnitCreate(name="浙江省公司", region_code="330000")
        )
        data = dict(username="admin", display_name="王管理", unit_id=top.id, roles=["admin"])
        admin = staff_service.create_staff(s, SYSTEM, StaffCreate(**data, password=PASSWORD))  # type: ignore[arg-type]
        channel_service.create_webhook(
            s, SYSTEM, WebhookIn(name="CRM", url=receiver.url, topics=["ticket.created"])
        )
        notify(
            s,
            "ticket.created",
            f"staff:{admin.id}",
            {"ticket_id": 1, "number": "T2026-0000001", "subject": "专线中断"},
            "b1",
        )
        notify(
            s,
            "sla.breach",
            f"staff:{admin.id}",
            {"ticket_id": 1, "number": "T2026-0000001", "title": "Resolution overdue"},
            "b2",
        )
    settings.delivery_max_attempts = 1  # the 503 makes a dead letter at once
    deliver.run(factory)
    app = create_app(settings, factory)
    try:
        with live_server(app) as base:
            yield {"url": base, "receiver": receiver, "factory": factory}
    finally:
        receiver.stop()
        engine.dispose()
        use_settings(None)


def test_bell_notices_and_dead_letter_retry(world: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    server, receiver = world["url"], world["receiver"]
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(
                locale="zh-CN", viewport={"width": 1280, "height": 800}
            ).new_page()
            page.goto(server + "/login")
            page.get_by_label("用户名").fill("admin")
            page.get_by_label("密码").fill(PASSWORD)
            page.get_by_label("密码").press("Enter")
            page.wait_for_load_state("load")
            expect(page.locator(".bell .bell-count")).to_have_text("2")  # loaded by htmx
            page.locator(".bell").click()
            expect(page.get_by_role("heading", name="通知", exact=True)).to_be_visible()
            expect(page.locator("table.notices")).to_contain_text("工单解决已超时")
            page.screenshot(path=str(ARTIFACTS / "browser-notices.png"), full_page=True)
            page.get_by_role("button", name="全部标为已读").click()
            expect(page.locator(".bell .bell-count")).to_have_class(re.compile("is-zero"))

            page.goto(server + "/deliveries")
            expect(page.locator("#results")).to_contain_text("HTTP 503")
            page.screenshot(path=str(ARTIFACTS / "browser-dead-letters.png"), full_page=True)
            receiver.status = 200
            page.get_by_role("button", name="重试").click()
            expect(page.locator(".toast-ok")).to_be_visible()
            deliver.run(world["factory"])
            assert len(receiver.processed) == 1
            page.goto(server + "/deliveries?status=delivered")
            expect(page.locator("#results")).to_contain_text("webhook:")
        finally:
            browser.close()
