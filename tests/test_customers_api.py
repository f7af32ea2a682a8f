from __future__ import annotations

from decimal import Decimal

from kefu.customers.policy import credit_check_char
from tests.factories import make_customer, make_staff, make_unit, token_for
from tests.scope_matrix import build_org, check_scope


def valid_credit_code(body: str = "91330100MA2AB1C2D") -> str:
    return body + credit_check_char(body)


def test_scope_matrix_customers_and_their_contacts(client, db):
    org = build_org(db)
    records = {}
    for unit in org.units.values():
        c = make_customer(db, unit, f"{unit.name}客户")
        records[c.id] = unit
    # A customer of county Z managed by county X's manager: X sees it as its manager.
    managed = make_customer(
        db, org.county_z, "代管客户", account_manager_id=org.people["county_x"].id
    )
    records[managed.id] = org.county_z
    db.commit()

    def extra(key: str):
        return {managed.id} if key == "county_x" else set()

    check_scope(
        client,
        org,
        list_url="/api/v1/customers",
        detail_url=lambda i: f"/api/v1/customers/{i}",
        records=records,
        extra_visible=extra,
        write=("PATCH", {"notes": "越界"}),
    )
    # Sub-resources follow their customer's scope.
    other = next(i for i, u in records.items() if u.id == org.county_y.id)
    h = org.headers["county_x"]
    assert client.get(f"/api/v1/customers/{other}/contacts", headers=h).status_code == 404
    assert (
        client.post(
            f"/api/v1/customers/{other}/contacts", headers=h, json={"name": "张三"}
        ).status_code
        == 404
    )
    assert client.get(f"/api/v1/customers/{other}/revenue", headers=h).status_code == 404
    assert client.get(f"/api/v1/customers/{other}/revenue/monthly", headers=h).status_code == 404


def test_create_customer_validates_every_field(client, db):
    root = make_unit(db)
    h = token_for(db, make_staff(db, root, roles=("admin",)))
    good = {
        "name": "杭州西湖科技有限公司",
        "credit_code": valid_credit_code(),
        "region_code": "330106",
        "owning_unit_id": root.id,
        "industry_code": "it",
    }
    r = client.post("/api/v1/customers", headers=h, json=good)
    assert r.status_code == 201, r.text
    assert r.json()["credit_code"] == good["credit_code"]
    dup = client.post("/api/v1/customers", headers=h, json={**good, "name": "别家"})
    assert dup.status_code == 422 and dup.json()["errors"][0]["field"] == "credit_code"
    wrong_check = good["credit_code"][:17] + ("0" if good["credit_code"][17] != "0" else "1")
    bad = client.post(
        "/api/v1/customers",
        headers={**h, "Accept-Language": "en"},
        json={
            "name": "",
            "credit_code": wrong_check,
            "region_code": "990000",
            "owning_unit_id": "x",
            "status": "gone",
            "extra": 1,
        },
    )
    assert bad.status_code == 422
    fields = {e["field"]: e["message"] for e in bad.json()["errors"]}
    assert set(fields) == {
        "name",
        "credit_code",
        "region_code",
        "owning_unit_id",
        "status",
        "extra",
    }
    assert "check digit" in fields["credit_code"]
    r = client.post(
        "/api/v1/customers",
        headers=h,
        json={**good, "credit_code": None, "industry_code": "astrology"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "industry_code"


def test_group_tree_refuses_cycles(client, db):
    root = make_unit(db)
    h = token_for(db, make_staff(db, root, roles=("admin",)))
    head = make_customer(db, root, "集团总部", is_group=True)
    branch = make_customer(db, root, "集团分公司", parent=head)
    sub = make_customer(db, root, "集团子公司", parent=branch)
    db.commit()
    r = client.patch(f"/api/v1/customers/{head.id}", headers=h, json={"parent_id": sub.id})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "parent_id"
    r = client.patch(f"/api/v1/customers/{sub.id}", headers=h, json={"parent_id": None})
    assert r.status_code == 200 and r.json()["depth"] == 0
    listed = client.get("/api/v1/customers", headers=h, params={"parent_id": head.id}).json()
    assert [c["id"] for c in listed["items"]] == [branch.id]


def test_contacts_and_revenue(client, db):
    root = make_unit(db)
    h = token_for(db, make_staff(db, root, roles=("admin",)))
    c = make_customer(db, root)
    db.commit()
    r = client.post(
        f"/api/v1/customers/{c.id}/contacts",
        headers=h,
        json={"name": "王经理", "phone": "+86 139-1234-5678", "email": "wang@example.cn"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["phone"] == "13912345678"
    bad = client.post(
        f"/api/v1/customers/{c.id}/contacts",
        headers=h,
        json={"name": "李", "phone": "12345", "preferred_channel": "fax"},
    )
    assert {e["field"] for e in bad.json()["errors"]} == {"phone", "preferred_channel"}
    landline = client.post(
        f"/api/v1/customers/{c.id}/contacts",
        headers=h,
        json={"name": "前台", "phone": "0571-87654321"},
    )
    assert landline.status_code == 201
    contacts = client.get(f"/api/v1/customers/{c.id}/contacts", headers=h).json()["items"]
    assert [x["name"] for x in contacts] == ["王经理", "前台"]
    cid = contacts[1]["id"]
    assert client.delete(f"/api/v1/customers/{c.id}/contacts/{cid}", headers=h).status_code == 204

    for day, amount in (("2026-01-15", "1200.50"), ("2026-01-20", "800"), ("2026-03-01", "99.99")):
        r = client.post(
            f"/api/v1/customers/{c.id}/revenue",
            headers=h,
            json={"date": day, "amount": amount, "business_line": "专线"},
        )
        assert r.status_code == 201, r.text
    for bad_body in (
        {"date": "2026-02-30", "amount": "1"},
        {"date": "2026-01-01", "amount": "-5"},
        {"date": "2026-01-01", "amount": "abc"},
        {"date": "2026-01-01", "amount": "1.234"},
    ):
        r = client.post(f"/api/v1/customers/{c.id}/revenue", headers=h, json=bad_body)
        assert r.status_code == 422, bad_body
    rows = client.get(f"/api/v1/customers/{c.id}/revenue", headers=h).json()["items"]
    assert [row["date"] for row in rows] == ["2026-03-01", "2026-01-20", "2026-01-15"]
    from datetime import UTC, datetime

    from kefu import clock

    clock.set_now(lambda: datetime(2026, 6, 1, tzinfo=UTC))
    monthly = client.get(
        f"/api/v1/customers/{c.id}/revenue/monthly", headers=h, params={"months": 12}
    ).json()
    assert [(m["month"], Decimal(m["amount"])) for m in monthly] == [
        ("2026-01", Decimal("2000.50")),
        ("2026-03", Decimal("99.99")),
    ]


def test_sort_by_revenue_pages_through_ties(client, db):
    root = make_unit(db)
    h = token_for(db, make_staff(db, root, roles=("admin",)))
    for i, revenue in enumerate([500, 100, 500, 300, 500, 0]):
        c = make_customer(db, root, f"排序{i}")
        c.revenue_12m = Decimal(revenue)
    db.commit()
    seen, cursor = [], None
    while True:
        params = {"sort": "revenue", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/customers", headers=h, params=params).json()
        seen += [(Decimal(x["revenue_12m"]), x["id"]) for x in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 6 and seen == sorted(seen, reverse=True)


def test_scoped_filtered_sorted_pages_match_a_naive_query(client, db):
    """Keyset pages of a scoped list, read part by part of the scope (per unit of the
    subtree, plus the customers the viewer manages elsewhere), equal the naive answer: every
    customer the viewer may see, filtered, sorted — nothing missing, doubled or out of place."""
    org = build_org(db)
    units = list(org.units.values())
    people = org.people
    # Customers in every unit; revenue with many ties, so the id breaks them across units.
    # Some are managed by county X's or city A's manager: inside their subtree (seen twice
    # by the parts, listed once) or outside it (seen only as their manager).
    managers = [None, None, None, people["county_x"].id, people["city_a"].id]
    customers = []
    for i in range(60):
        unit = units[(i * 7) % len(units)]
        c = make_customer(
            db, unit, f"客户{(i * 13) % 60:02d}号", account_manager_id=managers[i % len(managers)]
        )
        c.tier = "ABC"[(i * 5) % 3]
        c.revenue_12m = Decimal((i * 11) % 5 * 100)
        customers.append(c)
    db.commit()

    sorts = {
        "id": (lambda c: (c.id,), False),
        "name": (lambda c: (c.name, c.id), False),
        "revenue": (lambda c: (c.revenue_12m, c.id), True),
    }
    for who in ("county_x", "city_a", "county_z", "admin"):
        me = org.admin if who == "admin" else people[who]
        below = {u.id for u in units} if who == "admin" else org.subtree(who)
        for tier in (None, "B"):
            for sort, (key, reverse) in sorts.items():
                naive = sorted(
                    (
                        c
                        for c in customers
                        if (c.owning_unit_id in below or c.account_manager_id == me.id)
                        and (tier is None or c.tier == tier)
                    ),
                    key=key,
                    reverse=reverse,
                )
                for limit in (1, 4, 7):
                    got: list[int] = []
                    cursor = None
                    while True:
                        params = {"sort": sort, "limit": limit}
                        if tier:
                            params["tier"] = tier
                        if cursor:
                            params["cursor"] = cursor
                        r = client.get("/api/v1/customers", headers=org.headers[who], params=params)
                        assert r.status_code == 200, r.text
                        page = r.json()
                        assert len(page["items"]) <= limit
                        got += [x["id"] for x in page["items"]]
                        cursor = page["next_cursor"]
                        if not cursor:
                            break
                    assert got == [c.id for c in naive], (who, tier, sort, limit)


def test_only_a_list_scoped_once_by_parts_is_read_part_by_part(db):
    """The mark visible() leaves for paginate(): set for a model declaring parts, dropped
    when a second scope joins the statement, ignored for a list of another entity."""
    from sqlalchemy import select

    from kefu.customers.models import Customer
    from kefu.scope import Viewer, page_candidates, visible
    from kefu.staff.models import Staff

    me = Viewer(staff_id=1, username="x", unit_id=1, unit_path="/1/")
    key = [Customer.revenue_12m, Customer.id]

    def narrowed(stmt):
        return page_candidates(db, stmt, key, descending=True, n=3) is not None

    customers = visible(select(Customer), Customer, me)
    assert narrowed(customers)
    assert not narrowed(visible(customers, Staff, me))
    assert not narrowed(visible(visible(select(Staff), Staff, me), Customer, me))
    assert not narrowed(
        visible(select(Staff).join(Customer, Customer.id == Staff.id), Customer, me)
    )
    assert not narrowed(select(Customer))
