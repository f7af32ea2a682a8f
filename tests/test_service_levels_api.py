from __future__ import annotations

import itertools

from kefu.service_levels import service
from tests.factories import make_staff, make_unit, token_for


def test_defaults_are_there(client, db):
    h = token_for(db, make_staff(db, make_unit(db)))
    levels = client.get("/api/v1/service-levels", headers=h).json()
    assert [lv["code"] for lv in levels] == ["5A", "4A", "3A", "2A", "1A"]
    five = levels[0]
    assert five["name"] == "五星级服务" and five["is_24x7"] is True
    urgent = next(t for t in five["targets"] if t["priority"] == "urgent")
    assert urgent["first_response_minutes"] < urgent["resolution_minutes"]
    # Each lower level promises no faster than the one above it.
    for upper, lower in itertools.pairwise(levels):
        for prio in ("urgent", "high", "normal", "low"):
            u = next(t for t in upper["targets"] if t["priority"] == prio)
            lo = next(t for t in lower["targets"] if t["priority"] == prio)
            assert u["resolution_minutes"] <= lo["resolution_minutes"]
    en = client.get("/api/v1/service-levels/3A", headers={**h, "Accept-Language": "en"}).json()
    assert en["name"] == "Three-star service"


def test_edit_makes_a_new_version_and_keeps_the_old(client, db):
    admin = make_staff(db, make_unit(db), roles=("admin",))
    h = token_for(db, admin)
    before = client.get("/api/v1/service-levels/4A", headers=h).json()
    targets = [{**t, "resolution_minutes": t["resolution_minutes"] // 2} for t in before["targets"]]
    targets.append(
        {
            "priority": "urgent",
            "category_code": "fault_repair",
            "first_response_minutes": 10,
            "next_response_minutes": 30,
            "resolution_minutes": 120,
        }
    )
    r = client.patch(
        "/api/v1/service-levels/4A", headers=h, json={"return_visit_hours": 24, "targets": targets}
    )
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["version"] == before["version"] + 1 and after["version_id"] != before["version_id"]
    assert after["return_visit_hours"] == 24 and after["name_zh"] == before["name_zh"]
    old = service.targets_for(db, before["version_id"], "urgent", "fault_repair")
    new = service.targets_for(db, after["version_id"], "urgent", "fault_repair")
    plain = service.targets_for(db, after["version_id"], "urgent", "installation")
    assert old is not None and old.category_code is None
    assert new is not None and new.resolution_minutes == 120
    assert plain is not None and plain.category_code is None
    versions = client.get("/api/v1/service-levels/4A/versions", headers=h).json()
    assert [v["version"] for v in versions] == [after["version"], before["version"]]
    log = client.get("/api/v1/audit", headers=h, params={"object_type": "service_level"}).json()
    assert log["items"][0]["changes"]["return_visit_hours"]["after"] == 24


def test_bad_edits_are_refused(client, db):
    h = token_for(db, make_staff(db, make_unit(db), roles=("admin",)))
    r = client.patch(
        "/api/v1/service-levels/3A",
        headers=h,
        json={
            "targets": [
                {
                    "priority": "urgent",
                    "first_response_minutes": 10,
                    "next_response_minutes": 10,
                    "resolution_minutes": 60,
                }
            ]
        },
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "targets"
    r = client.patch("/api/v1/service-levels/3A", headers=h, json={"return_visit_hours": 0})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "return_visit_hours"
    r = client.patch("/api/v1/service-levels/9A", headers=h, json={"is_24x7": True})
    assert r.status_code == 404
    agent = token_for(db, make_staff(db, make_unit(db)))
    assert (
        client.patch("/api/v1/service-levels/3A", headers=agent, json={"is_24x7": True}).status_code
        == 403
    )
