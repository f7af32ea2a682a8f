"""Tiering by the rules of DESIGN.md, computed set-based, on both databases."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from kefu.customers.models import RevenueRecord
from kefu.scope import SYSTEM
from kefu.tiering import policy
from kefu.tiering import service as tiering
from kefu.tiering.models import TierHistory
from tests.factories import make_customer, make_staff, make_unit, token_for

RUN_DATE = date(2026, 6, 30)


def revenue(db, customer, amount, day=date(2026, 3, 1)):
    db.add(RevenueRecord(customer_id=customer.id, date=day, amount=Decimal(amount)))


@pytest.fixture
def world(db):
    province = make_unit(db, "浙江", region_code="330000")
    hz = make_unit(db, "杭州", province, region_code="330100")
    nb = make_unit(db, "宁波", province, region_code="330200")
    xihu = make_unit(db, "西湖", hz, region_code="330106")
    haishu = make_unit(db, "海曙", nb, region_code="330203")
    c = {}

    def cust(key, **kw):
        c[key] = make_customer(db, xihu, key, **kw)

    # Trailing-12-month revenue 600 / 200 / 100 / 50 / 50 = 1000 in all.
    for key, amount in (("c1", 600), ("c2", 200), ("c3", 100), ("c4", 50), ("c5", 50)):
        cust(key)
        revenue(db, c[key], amount)
        revenue(db, c[key], 1, date(2024, 1, 1))  # long-standing customers: not new
    cust("old")  # revenue only before the window, and long ago: not new → C
    revenue(db, c["old"], 5000, date(2025, 6, 30))
    cust("new")  # first revenue within 12 months (of zero amount): new → B
    revenue(db, c["new"], 0, date(2026, 5, 1))
    cust("potential", is_potential=True)
    cust("vip", is_important=True)
    cust("pinned")
    c["head"] = make_customer(db, xihu, "集团总部", is_group=True, region_code="330106")
    c["branch"] = make_customer(db, xihu, "集团宁波分公司", parent=c["head"], region_code="330203")
    c["city_head"] = make_customer(db, xihu, "本地集团", is_group=True, region_code="330106")
    db.flush()
    tiering.pin_customer(db, SYSTEM, c["pinned"].id, "A", "战略合作伙伴")
    db.flush()
    return {
        "units": {"province": province, "hz": hz, "nb": nb, "xihu": xihu, "haishu": haishu},
        "c": c,
    }


def test_run_follows_the_design_rules(db, world):
    run = tiering.start_run(db, SYSTEM, RUN_DATE)
    got = {p.customer_id: p for p in db.scalars(tiering.proposals(run.id))}
    c, u = world["c"], world["units"]

    def p(key):
        return got[c[key].id]

    assert (p("c1").new_tier, p("c1").rule) == ("A", "A:top_band")
    # c2 crosses 70 % (60 % above it): still the top band.
    assert (p("c2").new_tier, p("c2").rule) == ("A", "A:top_band")
    assert (p("c3").new_tier, p("c3").rule) == ("B", "B:middle_band")
    # c4 and c5 tie at 90 % above them: both in the low band.
    assert p("c4").new_tier == p("c5").new_tier == "C"
    assert p("old").new_tier == "C" and p("old").revenue_12m == 0
    assert (p("new").new_tier, p("new").rule) == ("B", "B:new")
    assert (p("potential").new_tier, p("potential").rule) == ("B", "B:potential")
    assert (p("vip").new_tier, p("vip").new_level, p("vip").rule) == ("A", "5A", "A:important")
    assert (p("pinned").new_tier, p("pinned").rule) == ("A", "pinned")
    assert (p("head").new_tier, p("head").rule) == ("A", "A:group_head")
    assert (p("branch").new_tier, p("branch").rule) == ("B", "B:branch")
    # Service levels: A → 4A, B → 3A, C split at the C median (50): 2A at or above, 1A below.
    assert p("c1").new_level == "4A" and p("c3").new_level == "3A"
    assert p("c4").new_level == p("c5").new_level == "2A"
    assert p("old").new_level == "1A"
    # Ownership: A → the city of its region, B/C → the county; a group spanning two cities
    # → the province.
    assert p("c1").new_unit_id == u["hz"].id
    assert p("c3").new_unit_id == u["xihu"].id
    assert p("head").new_unit_id == u["province"].id
    assert p("city_head").new_unit_id == u["hz"].id
    assert p("branch").new_unit_id == u["haishu"].id
    # A dry run changes nothing.
    db.refresh(c["c1"])
    assert c["c1"].tier is None
    assert run.summary["tiers"] == {"A": 6, "B": 4, "C": 3}
    assert run.summary["ownership_moves"] >= 4


def test_apply_records_history_and_pins_survive(db, world):
    c = world["c"]
    run = tiering.start_run(db, SYSTEM, RUN_DATE)
    tiering.apply_run(db, SYSTEM, run.id)
    db.expire_all()
    assert (c["c1"].tier, c["c1"].service_level, c["c1"].tier_rule) == ("A", "4A", "A:top_band")
    assert c["c1"].revenue_12m == Decimal("600.00")
    assert c["c1"].owning_unit_id == world["units"]["hz"].id
    assert c["pinned"].tier == "A" and c["pinned"].tier_pinned
    hist = db.query(TierHistory).filter_by(customer_id=c["c1"].id, run_id=run.id).one()
    assert (hist.from_tier, hist.to_tier, hist.reason, hist.actor) == (
        None,
        "A",
        "A:top_band",
        "system",
    )
    with pytest.raises(Exception, match="applied"):
        tiering.apply_run(db, SYSTEM, run.id)
    # A second run with nothing changed proposes no changes and writes no history.
    second = tiering.start_run(db, SYSTEM, RUN_DATE)
    assert second.summary["tier_moves"] == [] and second.summary["ownership_moves"] == 0
    before = db.query(TierHistory).count()
    tiering.apply_run(db, SYSTEM, second.id)
    assert db.query(TierHistory).count() == before
    # An older dry run cannot be applied after a newer one.
    stale = tiering.start_run(db, SYSTEM, RUN_DATE)
    newest = tiering.start_run(db, SYSTEM, RUN_DATE)
    tiering.apply_run(db, SYSTEM, newest.id)
    with pytest.raises(Exception, match="newer"):
        tiering.apply_run(db, SYSTEM, stale.id)


def test_ruleset_checks_at_save_time():
    with pytest.raises(ValueError, match="overlap"):
        policy.Ruleset(
            top_share="0.9", middle_share="0.7", rules=[{"tier": "C", "any": ["always"]}]
        )
    with pytest.raises(ValueError, match="cover"):
        policy.Ruleset(rules=[{"tier": "A", "any": ["important"]}])
    with pytest.raises(ValueError, match="last"):
        policy.Ruleset(
            rules=[{"tier": "C", "any": ["always"]}, {"tier": "A", "any": ["important"]}]
        )
    with pytest.raises(ValueError, match="one rule"):
        policy.Ruleset(
            rules=[
                {"tier": "A", "any": ["important"]},
                {"tier": "B", "any": ["important"]},
                {"tier": "C", "any": ["always"]},
            ]
        )


def test_api_preview_save_run_apply_pin(client, db, world):
    admin = make_staff(db, world["units"]["province"], roles=("admin",))
    h = token_for(db, admin)
    stricter = policy.DEFAULT.model_dump(mode="json") | {"top_share": "0.5"}
    r = client.post(
        "/api/v1/tiering/runs",
        headers=h,
        json={"run_date": RUN_DATE.isoformat(), "rules": stricter},
    )
    assert r.status_code == 201, r.text
    preview = r.json()
    assert preview["summary"]["tiers"]["A"] == 5  # c2 drops out of the top band at 50 %
    assert client.post(f"/api/v1/tiering/runs/{preview['id']}/apply", headers=h).status_code == 422
    bad = client.post(
        "/api/v1/tiering/rulesets",
        headers={**h, "Accept-Language": "en"},
        json={"rules": stricter | {"middle_share": "0.4"}},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "rules.middle_share"
    assert "overlap" in bad.json()["errors"][0]["message"]
    saved = client.post(
        "/api/v1/tiering/rulesets", headers=h, json={"rules": stricter, "note": "更严"}
    )
    assert saved.status_code == 201 and saved.json()["version"] == 1
    run = client.post(
        "/api/v1/tiering/runs", headers=h, json={"run_date": RUN_DATE.isoformat()}
    ).json()
    changed = client.get(
        f"/api/v1/tiering/runs/{run['id']}/proposals",
        headers=h,
        params={"changed": True, "limit": 200},
    ).json()["items"]
    assert len(changed) == 13
    applied = client.post(f"/api/v1/tiering/runs/{run['id']}/apply", headers=h)
    assert applied.status_code == 200 and applied.json()["status"] == "applied"
    c2 = world["c"]["c2"].id
    assert client.get(f"/api/v1/customers/{c2}", headers=h).json()["tier"] == "B"
    pin = client.put(
        f"/api/v1/customers/{c2}/pin", headers=h, json={"tier": "A", "reason": "集团战略客户"}
    )
    assert pin.status_code == 200 and pin.json()["tier_pinned"] is True
    hist = client.get(f"/api/v1/customers/{c2}/tier-history", headers=h).json()["items"]
    assert hist[0]["reason"] == "pinned: 集团战略客户" and hist[1]["run_id"] == run["id"]
    agent = token_for(db, make_staff(db, world["units"]["xihu"]))
    assert client.post("/api/v1/tiering/runs", headers=agent, json={}).status_code == 403
    assert (
        client.put(
            f"/api/v1/customers/{c2}/pin", headers=agent, json={"tier": "C", "reason": "试试"}
        ).status_code
        == 403
    )


def test_worker_retiers_once_per_interval(db, world, settings):
    from kefu import clock
    from kefu.jobs import retier

    first = retier.run(db)
    assert "applied_run" in first
    assert retier.run(db)["skipped"] == "fresh"
    later = clock.now() + timedelta(days=31)
    clock.set_now(lambda: later)
    assert "applied_run" in retier.run(db)
    settings.retier_interval_days = 0
    assert retier.run(db) == {"skipped": "disabled"}


def test_timeline_merges_changes_and_tier_history(client, db, world):
    c1 = world["c"]["c1"]
    run = tiering.start_run(db, SYSTEM, RUN_DATE)
    tiering.apply_run(db, SYSTEM, run.id)
    admin = make_staff(db, world["units"]["province"], roles=("admin",))
    h = token_for(db, admin)
    client.patch(f"/api/v1/customers/{c1.id}", headers=h, json={"notes": "年度框架合同"})
    items = client.get(
        f"/api/v1/customers/{c1.id}/timeline", headers={**h, "Accept-Language": "en"}
    ).json()
    kinds = [i["kind"] for i in items]
    assert kinds[0] == "change" and "tier" in kinds
    assert items[0]["text"] == "Archive changed: notes"
    tier = next(i for i in items if i["kind"] == "tier")
    assert tier["text"].startswith("Tier – → A") and "A:top_band" in tier["text"]
    assert [i["at"] for i in items] == sorted((i["at"] for i in items), reverse=True)
    other = make_unit(db, "别处", region_code="330300")
    outsider = token_for(db, make_staff(db, other, roles=("manager",)))
    assert client.get(f"/api/v1/customers/{c1.id}/timeline", headers=outsider).status_code == 404
    assert (
        client.get(f"/api/v1/customers/{c1.id}/tier-history", headers=outsider).status_code == 404
    )


def test_c_splits_at_the_mean_of_the_two_middle_revenues(db):
    """An even number of C customers: the median is the mean of the middle two, so the
    lower middle one falls below it (1A) and the upper one reaches it (2A)."""
    county = make_unit(
        db, "西湖", make_unit(db, "杭州", region_code="330100"), region_code="330106"
    )
    big = make_customer(db, county, "大客户")
    revenue(db, big, 10_000)
    revenue(db, big, 1, date(2024, 1, 1))
    small: dict[int, list] = {}
    # Ties on purpose (20, 20): tied C rows are numbered in any order, the values agree.
    for amount in (10, 20, 20, 40, 50, 60):
        customer = make_customer(db, county, f"小客户{amount}")
        small.setdefault(amount, []).append(customer)
        revenue(db, customer, amount)
        revenue(db, customer, 1, date(2024, 1, 1))
    db.flush()
    run = tiering.start_run(db, SYSTEM, RUN_DATE)
    got = {p.customer_id: p for p in db.scalars(tiering.proposals(run.id))}
    assert got[big.id].new_tier == "A"
    # C: 10, 20, 20, 40, 50, 60 → median (20 + 40) / 2 = 30.
    levels = {a: {got[c.id].new_level for c in cs} for a, cs in small.items()}
    assert {got[c.id].new_tier for cs in small.values() for c in cs} == {"C"}
    assert levels == {10: {"1A"}, 20: {"1A"}, 40: {"2A"}, 50: {"2A"}, 60: {"2A"}}
    assert run.summary["levels"] == {"5A": 0, "4A": 1, "3A": 0, "2A": 3, "1A": 3}
