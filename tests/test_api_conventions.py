from __future__ import annotations

from tests.factories import make_staff, make_unit, token_for


def test_openapi_document(client):
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    paths = doc["paths"]
    for path in (
        "/auth/token",
        "/units",
        "/units/{unit_id}",
        "/staff",
        "/staff/{staff_id}",
        "/audit",
    ):
        assert path in paths, path
    assert "Idempotency-Key" in {p["name"] for p in paths["/units"]["post"]["parameters"]}
    assert client.get("/api/v1/docs").status_code == 200


def test_unknown_route_and_method_are_problems(client, db):
    h = token_for(db, make_staff(db, make_unit(db), roles=("admin",)))
    r = client.get("/api/v1/nothing-here", headers=h)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = client.delete("/api/v1/units", headers={**h, "Accept-Language": "en"})
    assert r.status_code == 405 and r.json()["title"] == "Method not allowed"


def test_malformed_json_and_wrong_types(client, db):
    h = token_for(db, make_staff(db, make_unit(db), roles=("admin",)))
    r = client.post(
        "/api/v1/units", headers={**h, "Content-Type": "application/json"}, content=b"{not json"
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    r = client.post("/api/v1/units", headers=h, json=["a", "list"])
    assert r.status_code == 422
    r = client.post(
        "/api/v1/units", headers=h, json={"name": 12, "region_code": 330000, "sort_order": "x"}
    )
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"name", "region_code", "sort_order"} <= fields
    r = client.post(
        "/api/v1/units",
        headers={**h, "Content-Type": "application/json"},
        content='{"name": "杭州", "region_code": "330100"}'.encode("gbk"),
    )
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "body"
    r = client.post("/api/v1/units", headers=h, json={"name": "a\x00b", "region_code": "330100"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name"


def test_pagination_walks_every_unit_once(client, db):
    root = make_unit(db)
    for i in range(7):
        make_unit(db, f"子{i}", root)
    h = token_for(db, make_staff(db, root, roles=("admin",)))
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/units", headers=h, params=params).json()
        seen += [u["id"] for u in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 8


def test_request_id_reaches_the_audit_log(client, db):
    h = token_for(db, make_staff(db, make_unit(db), roles=("admin",)))
    r = client.post(
        "/api/v1/units",
        headers={**h, "X-Request-ID": "trace-42"},
        json={"name": "追踪", "region_code": "330100"},
    )
    assert r.status_code == 201 and r.headers["x-request-id"] == "trace-42"
    entry = client.get("/api/v1/audit", headers=h, params={"action": "unit.create"}).json()
    assert entry["items"][0]["request_id"] == "trace-42"
    assert entry["items"][0]["remote_addr"] == "testclient"
    assert client.get("/healthz").headers["x-request-id"]
