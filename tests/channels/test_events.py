"""Events of the other capabilities reach a webhook subscribed to every type: a ticket
created, changed (ticket.updated), resolved, and its survey answered (survey.answered)."""

from __future__ import annotations

from kefu.channels import service
from kefu.channels.schemas import WebhookIn
from kefu.jobs import deliver
from kefu.scope import SYSTEM
from kefu.tiering import service as tiering
from tests.channels.receiver import Receiver
from tests.test_tiering import RUN_DATE, world  # noqa: F401
from tests.visits.test_surveys_api import answer, desk, invite, tuesday_morning  # noqa: F401
from tests.visits.test_visits_api import resolved_ticket


def test_ticket_and_survey_events_reach_the_webhook(client, db, settings, session_factory, desk):  # noqa: F811
    settings.webhook_allow_private_targets = True
    receiver = Receiver().start()
    try:
        service.create_webhook(db, SYSTEM, WebhookIn(name="all", url=receiver.url, topics=["*"]))
        db.commit()
        h = desk["h"]
        t = resolved_ticket(client, h, desk["customer"].id)
        r = client.patch(
            f"/api/v1/tickets/{t['id']}",
            headers=h,
            json={
                "priority": "urgent",
                "version": client.get(f"/api/v1/tickets/{t['id']}", headers=h).json()["version"],
            },
        )
        assert r.status_code == 200, r.text
        inv = invite(client, h, t["id"])
        assert client.post(f"/api/v1/surveys/{inv['token']}", json=answer(csat=2)).status_code in (
            200,
            201,
        )
        deliver.run(session_factory)
        by_type = {}
        for doc in receiver.bodies():
            by_type.setdefault(doc["type"], []).append(doc["data"])
        assert {"ticket.created", "ticket.resolved", "ticket.updated", "survey.answered"} <= set(
            by_type
        )
        updated = [d for d in by_type["ticket.updated"] if "priority" in d["changed"]]
        assert updated and updated[0]["priority"] == "urgent" and updated[0]["ticket_id"] == t["id"]
        survey = by_type["survey.answered"][0]
        assert survey["ticket_id"] == t["id"] and survey["csat"] == 2 and survey["low"] is True
        assert receiver.duplicates == 0
    finally:
        receiver.stop()


def test_an_applied_tiering_run_sends_tier_changed(db, settings, session_factory, world):  # noqa: F811
    settings.webhook_allow_private_targets = True
    receiver = Receiver().start()
    try:
        service.create_webhook(
            db, SYSTEM, WebhookIn(name="crm", url=receiver.url, topics=["tier.changed"])
        )
        run = tiering.start_run(db, SYSTEM, RUN_DATE)
        tiering.apply_run(db, SYSTEM, run.id)
        db.commit()
        deliver.run(session_factory)
        docs = {d["data"]["customer_id"]: d for d in receiver.bodies()}
        c1 = world["c"]["c1"]
        assert docs[c1.id]["type"] == "tier.changed"
        data = docs[c1.id]["data"]
        assert (data["from_tier"], data["to_tier"], data["to_level"], data["reason"]) == (
            None,
            "A",
            "4A",
            "A:top_band",
        )
        assert data["run_id"] == run.id and data["to_unit_id"] == world["units"]["hz"].id
        assert len(docs) == len(receiver.requests)  # one event per changed customer
    finally:
        receiver.stop()
