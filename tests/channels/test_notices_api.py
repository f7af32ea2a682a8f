"""In-app notices and preferences over the API; robots' scope over the API."""

from __future__ import annotations

from kefu.jobs import deliver
from kefu.notifications.service import notify
from tests.factories import make_staff, make_unit, token_for
from tests.scope_matrix import build_org, check_scope


def test_notices_bell_list_read_and_preferences(client, db, session_factory):
    unit = make_unit(db)
    me = make_staff(db, unit, roles=("agent",), locale="en")
    other = make_staff(db, unit, roles=("agent",))
    mine, theirs = token_for(db, me), token_for(db, other)
    notify(
        db, "ticket.created", f"staff:{me.id}", {"ticket_id": 1, "number": "T2026-0000001"}, "n1"
    )
    notify(db, "sla.warning", f"staff:{me.id}", {"title": "Resolution due soon"}, "n2")
    notify(db, "ticket.created", f"staff:{other.id}", {"ticket_id": 2}, "n3")
    db.commit()
    deliver.run(session_factory)
    assert client.get("/api/v1/notices/unread-count", headers=mine).json() == {"unread": 2}
    items = client.get("/api/v1/notices", headers=mine).json()["items"]
    assert [n["topic"] for n in items] == ["sla.warning", "ticket.created"]
    assert items[1]["title"].startswith("T2026-0000001")
    # Someone else's notice is not there for me: 404.
    their_id = client.get("/api/v1/notices", headers=theirs).json()["items"][0]["id"]
    assert client.post(f"/api/v1/notices/{their_id}/read", headers=mine).status_code == 404
    r = client.post(f"/api/v1/notices/{items[0]['id']}/read", headers=mine)
    assert r.status_code == 200 and r.json()["read_at"]
    assert client.get("/api/v1/notices?unread=true", headers=mine).json()["items"][0]["topic"] == (
        "ticket.created"
    )
    assert client.post("/api/v1/notices/read-all", headers=mine).json() == {"marked": 1}
    assert client.get("/api/v1/notices/unread-count", headers=mine).json() == {"unread": 0}

    prefs = client.get("/api/v1/notification-preferences", headers=mine).json()
    inapp = {p["topic"]: p for p in prefs if p["channel"] == "inapp"}
    assert inapp["ticket.created"]["enabled"] and inapp["ticket.created"]["default"]
    r = client.put(
        "/api/v1/notification-preferences",
        json=[{"topic": "ticket.created", "channel": "inapp", "enabled": False}],
        headers=mine,
    )
    assert r.status_code == 200
    bad = client.put(
        "/api/v1/notification-preferences",
        json=[{"topic": "ticket.created", "channel": "webhook", "enabled": False}],
        headers=mine,
    )
    assert bad.status_code == 422
    notify(db, "ticket.created", f"staff:{me.id}", {"ticket_id": 3}, "n4")
    notify(db, "sla.breach", f"staff:{me.id}", {"ticket_id": 3}, "n5")
    db.commit()
    deliver.run(session_factory)
    unread = client.get("/api/v1/notices?unread=true", headers=mine).json()["items"]
    assert [n["topic"] for n in unread] == ["sla.breach"]  # ticket.created switched off


def test_robots_scope(client, db, settings):
    settings.webhook_allow_private_targets = True
    org = build_org(db)
    records = {}
    for key, unit in org.units.items():
        r = client.post(
            "/api/v1/robots",
            json={
                "unit_id": unit.id,
                "kind": "wecom",
                "name": f"{key} group",
                "url": "http://127.0.0.1:9/robot?key=" + key,
                "topics": ["sla.breach"],
            },
            headers=org.headers["admin"],
        )
        assert r.status_code == 201, r.text
        records[r.json()["id"]] = unit
    check_scope(
        client,
        org,
        list_url="/api/v1/robots",
        detail_url=lambda rid: f"/api/v1/robots/{rid}",
        records=records,
        write=("PATCH", {"name": "taken over"}),
    )
    # A manager adds robots to their subtree only.
    r = client.post(
        "/api/v1/robots",
        json={
            "unit_id": org.county_z.id,
            "kind": "wecom",
            "name": "not mine",
            "url": "http://127.0.0.1:9/",
            "topics": ["sla.breach"],
        },
        headers=org.headers["city_a"],
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "unit_id"
