"""/api/v1/webhooks and /api/v1/deliveries: admins only; everyone else gets 403 whatever
the id (so existence does not leak)."""

from __future__ import annotations

from kefu.jobs import deliver
from tests.channels.receiver import Receiver
from tests.factories import make_staff, make_unit, token_for


def test_admin_manages_subscriptions_and_dead_letters(client, db, settings, session_factory):
    settings.webhook_allow_private_targets = True
    unit = make_unit(db)
    admin = token_for(db, make_staff(db, unit, roles=("admin",)))
    manager = token_for(db, make_staff(db, unit, roles=("manager",)))
    db.commit()
    r = client.post(
        "/api/v1/webhooks",
        json={"name": "CRM", "url": "http://127.0.0.1:9/none", "topics": ["ticket.created"]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    sub = r.json()
    assert sub["secret"].startswith("whsec_") and r.headers["Location"].endswith(str(sub["id"]))
    assert (
        client.get(f"/api/v1/webhooks/{sub['id']}", headers=admin).json()["secret"] == sub["secret"]
    )
    bad = client.post(
        "/api/v1/webhooks",
        json={"name": "x", "url": "http://127.0.0.1/", "topics": ["no.such"]},
        headers=admin,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "topics"
    r = client.patch(f"/api/v1/webhooks/{sub['id']}", json={"topics": ["*"]}, headers=admin)
    assert r.json()["topics"] == ["*"]
    rotated = client.post(f"/api/v1/webhooks/{sub['id']}/rotate-secret", headers=admin).json()
    assert rotated["secret"] != sub["secret"]

    for method, path in [
        ("get", "/api/v1/webhooks"),
        ("get", f"/api/v1/webhooks/{sub['id']}"),
        ("get", "/api/v1/webhooks/999999"),
        ("patch", f"/api/v1/webhooks/{sub['id']}"),
        ("delete", f"/api/v1/webhooks/{sub['id']}"),
        ("get", "/api/v1/deliveries"),
        ("post", "/api/v1/deliveries/1/retry"),
    ]:
        kw = {"json": {}} if method == "patch" else {}
        assert getattr(client, method)(path, headers=manager, **kw).status_code == 403, path

    # A receiver that refuses: a dead letter, listed, retried.
    receiver = Receiver().start()
    try:
        receiver.status = 400
        client.patch(f"/api/v1/webhooks/{sub['id']}", json={"url": receiver.url}, headers=admin)
        client.post(
            "/api/v1/units", json={"name": "新单位", "region_code": "330000"}, headers=admin
        )
        from kefu.notifications.service import notify

        notify(db, "ticket.created", "unit:1", {"x": 1}, "api-dead")
        db.commit()
        deliver.run(session_factory)
        dead = client.get("/api/v1/deliveries?status=dead", headers=admin).json()["items"]
        assert [d["last_error"] for d in dead] == ["HTTP 400"]
        receiver.status = 200
        r = client.post(f"/api/v1/deliveries/{dead[0]['id']}/retry", headers=admin)
        assert r.status_code == 200 and r.json()["status"] == "pending"
        deliver.run(session_factory)
        attempts = client.get(f"/api/v1/deliveries/{dead[0]['id']}/attempts", headers=admin).json()
        assert [a["outcome"] for a in attempts] == ["dead", "manual", "delivered"]
        assert len(receiver.processed) == 1
    finally:
        receiver.stop()
    assert client.delete(f"/api/v1/webhooks/{sub['id']}", headers=admin).status_code == 204
    assert client.get(f"/api/v1/webhooks/{sub['id']}", headers=admin).status_code == 404
