from __future__ import annotations

from tests.factories import make_staff, make_unit, token_for
from tests.scope_matrix import build_org, check_scope


def test_scope_matrix_units(client, db):
    org = build_org(db)
    check_scope(
        client,
        org,
        list_url="/api/v1/units",
        detail_url=lambda i: f"/api/v1/units/{i}",
        records={u.id: u for u in org.units.values()},
        write=("PATCH", {"name": "越界"}),
    )


def test_admin_creates_unit_with_location_and_audit(client, db):
    root = make_unit(db, "浙江省")
    admin = make_staff(db, root, roles=("admin",))
    h = token_for(db, admin)
    r = client.post(
        "/api/v1/units",
        headers=h,
        json={
            "name": "杭州市",
            "parent_id": root.id,
            "region_code": "330100",
            "functions": ["service", "technical"],
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"/api/v1/units/{body['id']}"
    assert body["depth"] == 1 and body["level"] == "city"
    assert body["functions"] == ["service", "technical"]
    assert body["timezone"] == "Asia/Shanghai"
    log = client.get(
        "/api/v1/audit", headers=h, params={"object_type": "unit", "object_id": body["id"]}
    ).json()
    entry = log["items"][0]
    assert entry["action"] == "unit.create" and entry["actor_name"] == admin.username
    assert entry["changes"]["name"] == {"before": None, "after": "杭州市"}
    assert entry["channel"] == "api"


def test_move_subtree_updates_paths_and_refuses_cycles(client, db):
    root = make_unit(db, "省")
    a = make_unit(db, "甲", root)
    b = make_unit(db, "乙", root)
    a1 = make_unit(db, "甲一", a)
    a11 = make_unit(db, "甲一一", a1)
    h = token_for(db, make_staff(db, root, roles=("admin",)))

    r = client.patch(f"/api/v1/units/{a.id}", headers=h, json={"parent_id": b.id})
    assert r.status_code == 200, r.text
    assert r.json()["depth"] == 2
    deep = client.get(f"/api/v1/units/{a11.id}", headers=h).json()
    assert deep["path"] == f"{root.path}{b.id}/{a.id}/{a1.id}/{a11.id}/"
    assert deep["depth"] == 4

    r = client.patch(f"/api/v1/units/{b.id}", headers=h, json={"parent_id": a11.id})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "parent_id"
    r = client.patch(f"/api/v1/units/{b.id}", headers=h, json={"parent_id": b.id})
    assert r.status_code == 422
    # Nothing half-written: b still hangs under the root.
    assert client.get(f"/api/v1/units/{b.id}", headers=h).json()["parent_id"] == root.id


def test_only_admins_change_the_tree(client, db):
    root = make_unit(db)
    h = token_for(db, make_staff(db, root, roles=("manager",)))
    r = client.post(
        "/api/v1/units",
        headers=h,
        json={"name": "x", "parent_id": root.id, "region_code": "330100"},
    )
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"


def test_bad_input_names_each_field_in_callers_language(client, db):
    root = make_unit(db)
    h = token_for(db, make_staff(db, root, roles=("admin",)))
    bad = {
        "name": "",
        "parent_id": "abc",
        "region_code": "33",
        "timezone": "Mars/Base",
        "functions": ["cooking"],
        "colour": "red",
    }
    r = client.post("/api/v1/units", headers={**h, "Accept-Language": "en"}, json=bad)
    assert r.status_code == 422
    fields = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert set(fields) >= {"name", "parent_id", "region_code", "timezone", "functions.0", "colour"}
    assert fields["colour"] == "Unknown field."
    r = client.post("/api/v1/units", headers={**h, "Accept-Language": "zh-CN"}, json=bad)
    zh = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert zh["colour"] == "未知字段。"
    assert r.json()["title"] == "输入有误"
    long = client.post(
        "/api/v1/units", headers=h, json={"name": "长" * 101, "region_code": "330000"}
    )
    assert long.status_code == 422 and long.json()["errors"][0]["field"] == "name"


def test_idempotent_create_returns_first_unit(client, db):
    root = make_unit(db)
    h = token_for(db, make_staff(db, root, roles=("admin",)))
    body = {"name": "重试市", "parent_id": root.id, "region_code": "330100"}
    first = client.post("/api/v1/units", headers={**h, "Idempotency-Key": "k-1"}, json=body)
    again = client.post("/api/v1/units", headers={**h, "Idempotency-Key": "k-1"}, json=body)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    listed = client.get("/api/v1/units", headers=h, params={"q": "重试"}).json()["items"]
    assert len(listed) == 1
    other = client.post(
        "/api/v1/units", headers={**h, "Idempotency-Key": "k-1"}, json={**body, "name": "别的"}
    )
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
