"""Tiering administration on the web: the active ruleset, the editor with preview and save,
dry runs with summary and proposals, applying a run; 404 for everyone but administrators."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from kefu import clock
from kefu.customers.models import Customer, RevenueRecord
from kefu.i18n import set_locale
from kefu.scope import SYSTEM
from kefu.tiering import policy
from kefu.tiering import service as tiering
from kefu.tiering.models import TierHistory, TieringRuleset, TieringRun
from kefu.web.tiering import reason_label
from tests.factories import make_customer, make_staff, make_unit
from tests.web.helpers import HX, field_error, post, signed_in

TODAY = datetime(2026, 6, 30, 4, 0, tzinfo=UTC)


@pytest.fixture
def world(db):
    """A province, a city and a county; ten customers with falling revenue; an admin."""
    clock.set_now(lambda: TODAY)
    province = make_unit(db, "浙江省公司", region_code="330000")
    city = make_unit(db, "杭州市分公司", province, region_code="330100")
    county = make_unit(db, "西湖区支局", city, region_code="330106")
    customers = []
    for i, amount in enumerate((500, 200, 100, 80, 50, 30, 20, 10, 6, 4)):
        c = make_customer(db, county, f"分级客户{i}有限公司")
        db.add(RevenueRecord(customer_id=c.id, date=date(2026, 3, 1), amount=Decimal(amount)))
        db.add(RevenueRecord(customer_id=c.id, date=date(2024, 1, 1), amount=Decimal(1)))
        customers.append(c)
    db.flush()
    admin = make_staff(db, province, username="tier-admin", roles=("admin",))
    manager = make_staff(db, province, username="tier-manager", roles=("manager",))
    return {
        "county": county,
        "city": city,
        "customers": customers,
        "admin": admin,
        "manager": manager,
    }


def _rules_form(**changes: object) -> dict[str, object]:
    form: dict[str, object] = {
        "window_months": "12",
        "new_months": "12",
        "top_share": "70",
        "middle_share": "90",
        "province_groups": "1",
        "rules_A": ["important", "group_head", "top_band"],
        "rules_B": ["branch", "middle_band", "new", "potential"],
        "rules_C": ["always"],
        "level_a_important": "5A",
        "level_a": "4A",
        "level_b": "3A",
        "level_c_upper": "2A",
        "level_c_lower": "1A",
        "note": "",
        "action": "save",
    }
    form.update(changes)
    return form


def test_only_administrators_reach_tiering(client, db, world):
    run = tiering.start_run(db, SYSTEM, date(2026, 6, 30))
    db.flush()
    signed_in(client, world["manager"].username)
    for url in ("/tiering", "/tiering/rules", f"/tiering/runs/{run.id}"):
        assert client.get(url).status_code == 404, url
    for url, form in (
        ("/tiering/rules", _rules_form()),
        ("/tiering/runs", {}),
        (f"/tiering/runs/{run.id}/apply", {}),
    ):
        assert post(client, url, form).status_code == 404, url
    assert 'href="/tiering"' not in client.get("/").text
    db.expire_all()
    assert db.get(TieringRun, run.id).status == "dry_run"
    assert db.query(TieringRuleset).count() == 0


def test_overview_shows_the_active_rules_readably(client, db, world):
    signed_in(client, world["admin"].username)
    page = client.get("/tiering")
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    assert '<a href="/tiering" aria-current="page"' in page.text
    html = page.text
    assert (
        "当前规则：默认规则" in html and "尚未保存任何版本" in html and "还没有运行记录。" in html
    )
    rules = html[html.index('class="rule-list"') :]
    assert rules.index("标记为重要客户") < rules.index("高价值段（累计收入占比 &lt; 70%）")
    assert rules.index("高价值段") < rules.index("集团客户的分支机构") < rules.index("其余所有客户")
    assert "C 类，收入不低于全部 C 类客户的中位数" in html and ">2A<" in html
    fragment = client.get("/tiering", headers=HX)
    assert 'class="sidenav"' not in fragment.text and "当前规则：默认规则" in fragment.text
    client.cookies.set("kefu_lang", "en")
    english = client.get("/tiering").text
    assert "top value band (cumulative revenue share &lt; 70 %)" in english


def test_editor_starts_from_the_active_rules(client, db, world):
    signed_in(client, world["admin"].username)
    page = client.get("/tiering/rules")
    assert page.status_code == 200
    assert 'name="rules_A" value="top_band" aria-label="A 类：高价值段" checked' in page.text
    assert 'name="rules_C" value="always" aria-label="C 类：其余所有客户" checked' in page.text
    assert 'name="rules_C" value="top_band" aria-label="C 类：高价值段">' in page.text
    assert 'id="f-rs-top_share" name="top_share" type="text"\n         value="70"' in page.text
    fragment = client.get("/tiering/rules", headers=HX)
    assert 'class="sidenav"' not in fragment.text and 'id="ruleset-form"' in fragment.text


def test_preview_runs_the_unsaved_rules_and_saves_nothing(client, db, world):
    signed_in(client, world["admin"].username)
    r = post(client, "/tiering/rules", _rules_form(top_share="50", action="preview"))
    assert r.status_code == 200
    assert 'id="preview"' in r.text and "A — 高价值段（累计收入占比 &lt; 50%）" in r.text
    assert 'value="50"' in r.text  # the form keeps what was typed
    run = db.query(TieringRun).one()
    assert run.is_preview and run.summary["tiers"] == {"A": 1, "B": 4, "C": 5}
    assert db.query(TieringRuleset).count() == 0
    fragment = post(client, "/tiering/rules", _rules_form(action="preview"), headers=HX)
    assert (
        fragment.status_code == 200
        and "<html" not in fragment.text
        and 'id="preview"' in fragment.text
    )
    page = client.get(f"/tiering/runs/{run.id}").text
    assert "这是未保存规则的预览" in page and f'action="/tiering/runs/{run.id}/apply"' not in page
    r = post(client, f"/tiering/runs/{run.id}/apply")
    assert r.status_code == 422 and "未保存规则的预览不能应用" in r.text
    assert db.query(TierHistory).count() == 0


def test_bad_rules_are_refused_beside_the_field_in_the_readers_language(client, db, world):
    signed_in(client, world["admin"].username)
    r = post(client, "/tiering/rules", _rules_form(top_share="90", middle_share="80"))
    assert r.status_code == 422
    assert field_error(r.text, "f-rs-middle_share") == (
        "价值分段重叠：高价值段的累计占比必须低于中价值段。"
    )
    r = post(client, "/tiering/rules", _rules_form(rules_C=[]))
    assert field_error(r.text, "f-rs-rules").startswith("规则未覆盖所有客户")
    r = post(client, "/tiering/rules", _rules_form(rules_B=["branch", "always"], rules_C=[]))
    assert "必须放在最后" in field_error(r.text, "f-rs-rules")
    r = post(client, "/tiering/rules", _rules_form(rules_B=["branch"], rules_C=["new", "always"]))
    assert "必须放在最后" in field_error(r.text, "f-rs-rules")
    r = post(client, "/tiering/rules", _rules_form(top_share="七十", window_months="0"))
    assert field_error(r.text, "f-rs-top_share").startswith("应为大于 0、不超过 100 的百分数")
    r = post(client, "/tiering/rules", _rules_form(window_months="0", new_months="x"))
    assert field_error(r.text, "f-rs-window_months") == "不能小于 1。"
    assert field_error(r.text, "f-rs-new_months") == "必须是整数。"
    r = post(client, "/tiering/rules", _rules_form(level_b="9A"))
    assert field_error(r.text, "f-rs-level_b").startswith("必须是以下之一")
    client.cookies.set("kefu_lang", "en")
    r = post(
        client,
        "/tiering/rules",
        _rules_form(top_share="90", middle_share="80", action="preview"),
        headers=HX,
    )
    assert r.status_code == 422 and "<html" not in r.text
    assert field_error(r.text, "f-rs-middle_share").startswith("The bands overlap")
    assert db.query(TieringRuleset).count() == 0 and db.query(TieringRun).count() == 0


def test_save_makes_a_new_active_version(client, db, world):
    signed_in(client, world["admin"].username)
    form = _rules_form(top_share="60", rules_B=["branch", "middle_band"], note="收紧高价值段")
    r = post(client, "/tiering/rules", form)
    assert r.status_code == 303 and r.headers["location"] == "/tiering?notice=saved"
    row, spec = tiering.active_ruleset(db)
    assert row is not None and row.version == 1 and row.note == "收紧高价值段"
    assert spec.top_share == Decimal("0.6") and spec.rules[1].any == ["branch", "middle_band"]
    html = client.get(r.headers["location"]).text
    assert "当前规则：第 1 版" in html and "收紧高价值段" in html
    assert "高价值段（累计收入占比 &lt; 60%）" in html
    editor = client.get("/tiering/rules").text
    assert 'name="rules_B" value="new" aria-label="B 类：新客户">' in editor  # unchecked now


def test_a_dry_run_its_summary_proposals_and_apply(client, db, world):
    signed_in(client, world["admin"].username)
    r = post(client, "/tiering/runs", {"run_date": "2026-13-01"})
    assert (
        r.status_code == 422
        and field_error(r.text, "f-run-run_date") == "必须是日期（YYYY-MM-DD）。"
    )
    r = post(client, "/tiering/runs", {"run_date": ""})
    assert r.status_code == 303
    run_id = int(re.search(r"/tiering/runs/(\d+)", r.headers["location"]).group(1))
    page = client.get(f"/tiering/runs/{run_id}")
    html = page.text
    assert page.status_code == 200 and "试运行" in html
    summary = html[html.index('class="kpis"') :]
    assert re.search(r"A 类</span><span class=\"kpi-value\">2<", summary)  # 500 and 200 of 1000
    matrix = html[html.index('class="table table-compact matrix"') :]
    assert "尚无等级" in matrix  # the customers had no tier before
    assert "C — 其余所有客户" in html and "A — 高价值段（累计收入占比 &lt; 70%）" in html
    rows = html.split("<tbody>")[-1]
    assert "分级客户0有限公司" in rows and "¥500.00" in rows
    changed = client.get(
        f"/tiering/runs/{run_id}",
        params={"changed": "1", "tier": "A"},
        headers={**HX, "HX-Target": "results"},
    )
    assert (
        changed.text.lstrip().startswith("<table") and changed.text.count("<tr>") == 3
    )  # head + 2
    # Apply: tiers, levels and owners are written, once.
    r = post(client, f"/tiering/runs/{run_id}/apply")
    assert r.status_code == 303 and r.headers["location"].endswith("notice=applied")
    db.expire_all()
    top = db.get(Customer, world["customers"][0].id)
    assert (top.tier, top.service_level, top.tier_rule) == ("A", "4A", "A:top_band")
    assert top.owning_unit_id == world["city"].id  # an A customer belongs to its city
    page = client.get(r.headers["location"]).text
    assert "已应用：" in page and "/apply" not in page
    again = post(client, f"/tiering/runs/{run_id}/apply", headers=HX)
    assert again.status_code == 409 and "该次分级运行已应用或已作废。" in again.text
    overview = client.get("/tiering").text
    runs = overview[overview.index('id="runs"') :]
    assert f'href="/tiering/runs/{run_id}"' in runs and "已应用" in runs


def test_proposals_page_through_cursors(client, db, world):
    for i in range(55):
        make_customer(db, world["county"], f"翻页客户{i}")
    db.flush()
    signed_in(client, world["admin"].username)
    run = post(client, "/tiering/runs", {"run_date": "2026-06-30"}).headers["location"]
    seen = 0
    url: str | None = run.split("?")[0]
    while url:
        html = client.get(url).text
        seen += html.split("<tbody>")[-1].count("<tr>")
        found = re.search(r'href="([^"]+)"[^>]*rel="next"', html)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert seen == 65


def test_unknown_run_is_404(client, db, world):
    signed_in(client, world["admin"].username)
    assert client.get("/tiering/runs/999999").status_code == 404
    assert post(client, "/tiering/runs/999999/apply").status_code == 404


def test_reasons_read_as_sentences():
    spec = policy.DEFAULT
    set_locale("zh_CN")
    assert reason_label("A:top_band", spec) == "A — 高价值段（累计收入占比 < 70%）"
    assert reason_label("B:new", spec) == "B — 新客户（首笔收入在 12 个月内）"
    assert reason_label("pinned", spec, "战略伙伴") == "由经理锁定：战略伙伴"
    assert reason_label("pinned: 战略伙伴", spec) == "由经理锁定：战略伙伴"
    assert reason_label("pinned", spec) == "由经理锁定"
    assert reason_label("X:unknown", spec) == "X:unknown" and reason_label(None, spec) == ""
    set_locale("en")
    assert reason_label("A:top_band", spec) == (
        "A — top value band (cumulative revenue share < 70 %)"
    )
    narrower = spec.model_copy(update={"middle_share": Decimal("0.85")})
    assert reason_label("B:middle_band", narrower) == (
        "B — middle value band (cumulative revenue share < 85 %)"
    )
