from __future__ import annotations

from kefu.staff.models import Staff
from tests.factories import PASSWORD, make_staff, make_unit, token_for
from tests.scope_matrix import build_org, check_scope


def test_scope_matrix_staff(client, db):
    org = build_org(db)
    records = {s.id: org.units[k] for k, s in org.people.items()}
    records[org.admin.id] = org.province
    for key, unit in org.units.items():
        agent = make_staff(db, unit, username=f"agent-{key.replace('_', '-')}")
        records[agent.id] = unit
    db.commit()
    check_scope(
        client,
        org,
        list_url="/api/v1/staff",
        detail_url=lambda i: f"/api/v1/staff/{i}",
        records=records,
        write=("PATCH", {"display_name": "越界"}),
    )


def test_create_staff_and_bad_input(client, db):
    root = make_unit(db)
    h = token_for(db, make_staff(db, root, roles=("admin",)))
    ok = client.post(
        "/api/v1/staff",
        headers=h,
        json={
            "username": "Li.Na",
            "display_name": "李娜",
            "unit_id": root.id,
            "roles": ["agent", "supervisor"],
            "phone": "13912345678",
            "password": PASSWORD,
        },
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["username"] == "li.na"
    assert ok.json()["roles"] == ["agent", "supervisor"]
    assert "password" not in ok.json() and "password_hash" not in ok.json()
    dup = client.post(
        "/api/v1/staff",
        headers={**h, "Accept-Language": "en"},
        json={"username": "li.na", "display_name": "x", "unit_id": root.id},
    )
    assert dup.status_code == 422
    assert dup.json()["errors"] == [
        {"field": "username", "message": "This username is already taken."}
    ]
    bad = client.post(
        "/api/v1/staff",
        headers=h,
        json={
            "username": "a b",
            "display_name": "x" * 101,
            "unit_id": 999999,
            "roles": ["king"],
            "email": "nope",
            "phone": "12",
            "password": "short",
        },
    )
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert fields == {"username", "display_name", "roles.0", "email", "phone", "password"}
    wrong_unit = client.post(
        "/api/v1/staff", headers=h, json={"username": "wu", "display_name": "吴", "unit_id": 999999}
    )
    assert wrong_unit.status_code == 422
    assert wrong_unit.json()["errors"][0]["field"] == "unit_id"
    assert db.query(Staff).filter_by(username="wu").count() == 0


def test_manager_cannot_grant_admin_or_touch_admins(client, db):
    root = make_unit(db)
    admin = make_staff(db, root, roles=("admin",))
    h = token_for(db, make_staff(db, root, roles=("manager",)))
    r = client.post(
        "/api/v1/staff",
        headers=h,
        json={"username": "boss", "display_name": "老板", "unit_id": root.id, "roles": ["admin"]},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "roles"
    r = client.patch(f"/api/v1/staff/{admin.id}", headers=h, json={"display_name": "改"})
    assert r.status_code == 403


def test_agents_cannot_manage_staff_but_edit_own_profile(client, db):
    root = make_unit(db)
    me = make_staff(db, root)
    other = make_staff(db, root)
    h = token_for(db, me)
    assert (
        client.patch(f"/api/v1/staff/{other.id}", headers=h, json={"display_name": "x"}).status_code
        == 403
    )
    r = client.patch(f"/api/v1/staff/{me.id}", headers=h, json={"locale": "en"})
    assert r.status_code == 200 and r.json()["locale"] == "en"
    assert (
        client.patch(f"/api/v1/staff/{me.id}", headers=h, json={"roles": ["admin"]}).status_code
        == 403
    )


def test_last_admin_cannot_be_deactivated_or_demoted(client, db):
    root = make_unit(db)
    only = make_staff(db, root, roles=("admin",))
    second = make_staff(db, root, roles=("admin",))
    h = token_for(db, second)
    # Two admins: the other may be deactivated.
    r = client.patch(f"/api/v1/staff/{only.id}", headers=h, json={"is_active": False})
    assert r.status_code == 200
    # Now `second` is the last one: neither demotion nor deactivation (by themself) works.
    r = client.patch(f"/api/v1/staff/{second.id}", headers=h, json={"roles": ["agent"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "roles"
    assert client.get(f"/api/v1/staff/{second.id}", headers=h).json()["roles"] == ["admin"]


def test_deactivation_ends_tokens_at_once(client, db):
    root = make_unit(db)
    admin_h = token_for(db, make_staff(db, root, roles=("admin",)))
    victim = make_staff(db, root)
    victim_h = token_for(db, victim)
    assert client.get("/api/v1/auth/me", headers=victim_h).status_code == 200
    r = client.patch(f"/api/v1/staff/{victim.id}", headers=admin_h, json={"is_active": False})
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert client.get("/api/v1/auth/me", headers=victim_h).status_code == 401
    r = client.post("/api/v1/auth/token", json={"username": victim.username, "password": PASSWORD})
    assert r.status_code == 401


def test_staff_list_filters(client, db):
    root = make_unit(db)
    child = make_unit(db, parent=root)
    h = token_for(db, make_staff(db, root, roles=("admin",)))
    make_staff(db, child, display_name="赵敏", roles=("supervisor",))
    make_staff(db, root, display_name="周芷若")
    db.commit()

    def names(**p):
        return {
            s["display_name"]
            for s in client.get("/api/v1/staff", headers=h, params=p).json()["items"]
        }

    assert names(unit_id=child.id) == {"赵敏"}
    assert names(role="supervisor") == {"赵敏"}
    assert names(q="芷若") == {"周芷若"}
    r = client.get("/api/v1/staff", headers=h, params={"limit": 0})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "limit"
    r = client.get("/api/v1/staff", headers=h, params={"cursor": "%%%"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cursor"
