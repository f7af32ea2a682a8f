"""Pages of the channels: the bell and notices, preferences, webhooks, robots, the delivery
log with its dead letters (each as a full page and as an HTMX fragment)."""

from __future__ import annotations

import re

from kefu.jobs import deliver
from kefu.notifications.service import notify
from tests.channels.receiver import Receiver
from tests.factories import make_staff, make_unit
from tests.web.helpers import HX, field_error, post, signed_in


def test_bell_counts_and_notices_are_read(client, db, session_factory):
    unit = make_unit(db)
    me = make_staff(db, unit, roles=("agent",))
    notify(
        db,
        "ticket.created",
        f"staff:{me.id}",
        {"ticket_id": 5, "number": "T2026-0000005", "subject": "电梯故障"},
        "w1",
    )
    notify(db, "sla.warning", f"staff:{me.id}", {"title": "Resolution due soon"}, "w2")
    db.commit()
    deliver.run(session_factory)
    signed_in(client, me.username)
    home = client.get("/").text
    assert 'hx-get="/notices/bell"' in home and 'href="/notices"' in home
    bell = client.get("/notices/bell", headers=HX).text
    assert re.search(r'class="bell-count"[^>]*>2<', bell)
    page = client.get("/notices")
    assert page.status_code == 200 and "<html" in page.text
    assert (
        "T2026-0000005" in page.text and "电梯故障" in page.text and "工单解决即将超时" in page.text
    )
    fragment = client.get("/notices?unread=1", headers={**HX, "HX-Target": "results"}).text
    assert "<html" not in fragment and "T2026-0000005" in fragment
    opener = r'action="/notices/(\d+)/read"[^>]*>\s*<input[^>]*><input type="hidden" name="open"'
    notice_id = re.search(opener, page.text).group(1)  # type: ignore[union-attr]
    r = post(client, f"/notices/{notice_id}/read", {"open": "1"})
    assert r.status_code == 303 and r.headers["location"].startswith("/tickets/")
    assert re.search(r'class="bell-count"[^>]*>1<', client.get("/notices/bell", headers=HX).text)
    assert post(client, "/notices/read-all").status_code == 303
    assert "is-zero" in client.get("/notices/bell", headers=HX).text


def test_preferences_switch_a_channel_off(client, db, session_factory):
    unit = make_unit(db)
    me = make_staff(db, unit, roles=("agent",))
    signed_in(client, me.username)
    page = client.get("/notices/preferences").text
    assert 'value="ticket.created|inapp" checked' in page
    every = re.findall(r'name="on" value="([^"]+)" checked', page)
    keep = [v for v in every if v != "ticket.created|inapp"]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    r = client.post(
        "/notices/preferences",
        data={"csrf_token": token, "on": keep},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert 'value="ticket.created|inapp" checked' not in client.get("/notices/preferences").text
    notify(db, "ticket.created", f"staff:{me.id}", {"ticket_id": 1}, "pref1")
    db.commit()
    deliver.run(session_factory)
    assert "is-zero" in client.get("/notices/bell", headers=HX).text


def test_admin_webhooks_and_dead_letter_retry(client, db, settings, session_factory):
    settings.webhook_allow_private_targets = True
    root = make_unit(db, "总部")
    admin = make_staff(db, root, roles=("admin",))
    signed_in(client, admin.username)
    receiver = Receiver().start()
    try:
        bad = post(
            client, "/webhooks", {"name": "CRM", "url": "ftp://x", "topics": "ticket.created"}
        )
        assert bad.status_code == 422 and field_error(bad.text, "f-url")
        r = post(
            client, "/webhooks", {"name": "CRM", "url": receiver.url, "topics": "ticket.created"}
        )
        assert r.status_code == 303
        detail = client.get(r.headers["location"]).text
        assert "whsec_" in detail and receiver.url in detail
        receiver.status = 404
        notify(db, "ticket.created", f"unit:{root.id}", {"ticket_id": 9}, "web-dead")
        db.commit()
        deliver.run(session_factory)
        log = client.get("/deliveries").text  # dead letters first
        assert "HTTP 404" in log and "/retry" in log
        delivery_id = re.search(r'action="/deliveries/(\d+)/retry"', log).group(1)  # type: ignore[union-attr]
        assert "HTTP 404" in client.get(f"/deliveries/{delivery_id}").text
        receiver.status = 200
        r = post(client, f"/deliveries/{delivery_id}/retry", {"next": "/deliveries?status=dead"})
        assert r.status_code == 303
        deliver.run(session_factory)
        assert len(receiver.processed) == 1
        fragment = client.get(
            "/deliveries?status=delivered", headers={**HX, "HX-Target": "results"}
        ).text
        assert "<html" not in fragment and f'href="/deliveries/{delivery_id}"' in fragment
        audit = client.get("/audit", params={"object_type": "delivery"}).text
        assert "delivery.retry" in audit
    finally:
        receiver.stop()


def test_robots_pages_for_managers_and_404_for_agents(client, db, settings):
    settings.webhook_allow_private_targets = True
    city = make_unit(db, "杭州市")
    manager = make_staff(db, city, roles=("manager",))
    agent = make_staff(db, city, roles=("agent",))
    signed_in(client, manager.username)
    page = client.get("/robots").text
    assert "企业微信" in page
    missing = post(
        client,
        "/robots",
        {
            "unit_id": str(city.id),
            "kind": "dingtalk",
            "name": "群",
            "url": "http://127.0.0.1:9/",
            "topics": "sla.breach",
        },
    )
    assert missing.status_code == 422 and field_error(missing.text, "f-secret")
    r = post(
        client,
        "/robots",
        {
            "unit_id": str(city.id),
            "kind": "dingtalk",
            "name": "服务群",
            "url": "http://127.0.0.1:9/robot/send?access_token=x",
            "secret": "SECabc",
            "topics": ["sla.breach", "sla.escalated"],
            "locale": "zh_CN",
        },
    )
    assert r.status_code == 303
    detail = client.get(r.headers["location"]).text
    assert "服务群" in detail and "SECabc" not in detail  # the secret is never shown again
    assert "服务群" in client.get("/robots").text
    post(client, "/logout")
    signed_in(client, agent.username)
    for url in ("/robots", "/webhooks", "/deliveries", r.headers["location"]):
        assert client.get(url).status_code == 404, url
