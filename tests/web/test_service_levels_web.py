"""Service levels on the web: what each level entitles to, its SLA targets and versions; an
administrator's edit makes a new version, with errors beside the fields."""

from __future__ import annotations

import re

from kefu import i18n
from kefu.scope import SYSTEM
from kefu.service_levels import service
from kefu.service_levels.models import ServiceLevelVersion
from kefu.service_levels.schemas import ServiceLevelUpdate
from kefu.web.charts import duration
from tests.factories import make_staff, make_unit
from tests.web.helpers import HX, field_error, post, signed_in


def _edit_form(db, code: str, **changes: str) -> dict[str, str]:
    """The edit form as the page fills it from the current version, with some changes."""
    v = service.get_level(db, code).current
    content = {i["key"]: i["value"] for i in v.content}
    form = {
        "name_zh": v.name_zh,
        "name_en": v.name_en,
        "description": v.description,
        "return_visit_hours": str(v.return_visit_hours),
        "return_visit_method": v.return_visit_method,
        "visit_frequency_days": str(v.visit_frequency_days or ""),
        "onsite_response_hours": str(content.get("onsite_response_hours") or ""),
        "is_24x7": "1" if v.is_24x7 else "",
        "pause_on_hold": "1" if v.pause_on_hold else "",
    }
    for key in ("dedicated_manager", "hotline_24x7", "priority_dispatch", "periodic_review"):
        form[f"c_{key}"] = "1" if content.get(key) else ""
    for t in v.targets:
        if t.category_code is None:
            for key, minutes in (
                ("first", t.first_response_minutes),
                ("next", t.next_response_minutes),
                ("resolution", t.resolution_minutes),
            ):
                form[f"t_{t.priority}_{key}_h"] = str(minutes // 60)
                form[f"t_{t.priority}_{key}_m"] = str(minutes % 60)
    form.update(changes)
    return form


def test_levels_with_entitlements_and_targets_in_both_languages(client, db):
    agent = make_staff(db, make_unit(db))
    signed_in(client, agent.username)
    page = client.get("/service-levels")
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    html = page.text
    assert [m for m in re.findall(r'id="level-(\w+)"', html)] == ["5A", "4A", "3A", "2A", "1A"]
    five = html[html.index('id="level-5A"') : html.index('id="level-4A"')]
    for text in (
        "五星级服务",
        "专属客户经理",
        "2 小时内上门响应",
        "7×24 小时服务热线",
        "每 30 天走访一次",
    ):
        assert text in five, text
    assert "解决后 24 小时内，方式：上门回访" in five and "按自然时间全天候计时。" in five
    urgent = five[five.index("紧急") :]
    urgent = urgent[: urgent.index("</tr>")]
    assert re.findall(r'<td class="num nowrap">([^<]+)</td>', urgent) == [
        "15 分钟",
        "1 小时",
        "4 小时",
    ]
    one = html[html.index('id="level-1A"') :]
    assert "专属客户经理" not in one and "按处理单位日历的工作时间计时。" in one
    fragment = client.get("/service-levels", headers=HX)
    assert 'class="sidenav"' not in fragment.text and "五星级服务" in fragment.text
    client.cookies.set("kefu_lang", "en")
    english = client.get("/service-levels").text
    assert "Five-star service" in english and "Dedicated account manager" in english
    assert "On-site response within 2 hours" in english and ">15 min<" in english
    assert "within 24 hours after resolution, by On-site visit" in english


def test_everyone_reads_a_level_only_administrators_edit_it(client, db):
    manager = make_staff(db, make_unit(db), roles=("manager",))
    signed_in(client, manager.username)
    page = client.get("/service-levels/3A")
    assert page.status_code == 200 and "三星级服务" in page.text
    assert 'id="level-form"' not in page.text and "第 1 版" in page.text
    assert 'href="/service-levels"' not in page.text.split('class="sidenav"')[1].split("</nav>")[0]
    assert post(client, "/service-levels/3A", _edit_form(db, "3A")).status_code == 404
    assert len(service.versions(db, "3A")) == 1
    assert client.get("/service-levels/9A").status_code == 404
    fragment = client.get("/service-levels/3A", headers=HX)
    assert fragment.status_code == 200 and 'class="sidenav"' not in fragment.text


def test_an_edit_makes_a_new_version_and_keeps_the_old_one(client, db):
    # A category's own target is not in the grid: it must survive the edit.
    old = service.get_level(db, "4A").current
    targets = [
        {
            "priority": t.priority,
            "category_code": t.category_code,
            "first_response_minutes": t.first_response_minutes,
            "next_response_minutes": t.next_response_minutes,
            "resolution_minutes": t.resolution_minutes,
        }
        for t in old.targets
    ]
    targets.append(
        {
            "priority": "urgent",
            "category_code": "fault_repair",
            "first_response_minutes": 10,
            "next_response_minutes": 30,
            "resolution_minutes": 120,
        }
    )
    service.update_level(db, SYSTEM, "4A", ServiceLevelUpdate.model_validate({"targets": targets}))
    db.flush()
    admin = make_staff(db, make_unit(db), username="sl-admin", roles=("admin",))
    signed_in(client, admin.username)
    page = client.get("/service-levels/4A").text
    assert 'id="level-form"' in page and "编辑：将生成第 3 版" in page
    assert 'id="f-sl-t_urgent_resolution_h" value="8"' in page
    assert "fault_repair" in page  # the category's target, shown read-only
    form = _edit_form(
        db,
        "4A",
        return_visit_hours="24",
        return_visit_method="onsite",
        t_urgent_resolution_h="5",
        t_urgent_resolution_m="30",
        c_priority_dispatch="1",
        onsite_response_hours="3",
    )
    r = post(client, "/service-levels/4A", form)
    assert r.status_code == 303 and r.headers["location"] == "/service-levels/4A?notice=saved"
    level = service.get_level(db, "4A")
    new = level.current
    assert new.version == 3 and new.return_visit_hours == 24 and new.return_visit_method == "onsite"
    urgent = next(t for t in new.targets if t.priority == "urgent" and t.category_code is None)
    assert urgent.resolution_minutes == 330 and urgent.first_response_minutes == 30
    assert any(t.category_code == "fault_repair" for t in new.targets)
    content = {i["key"]: i["value"] for i in new.content}
    assert content["priority_dispatch"] is True and content["onsite_response_hours"] == 3
    assert [i["key"] for i in new.content][:4] == [i["key"] for i in old.content]  # order kept
    html = client.get(r.headers["location"]).text
    assert "已保存。" in html and "5 小时 30 分钟" in html and "3 小时内上门响应" in html
    history = html[html.index('id="versions"') :]
    rows = history.split("<tbody>")[1].split("</tr>")
    assert "第 3 版" in rows[0] and "服务内容、回访时限、回访方式和SLA 时限" in rows[0]
    assert "第 2 版" in rows[1] and "<td>SLA 时限</td>" in rows[1]
    assert "首个版本" in rows[2]
    first = client.get("/service-levels/4A?version=1").text
    assert (
        "较早的版本" in first
        and "8 小时" in first
        and "5 小时 30 分钟" not in first.split('id="edit"')[0]
    )
    assert db.query(ServiceLevelVersion).filter_by(level_code="4A").count() == 3


def test_bad_edits_are_shown_beside_the_fields_and_nothing_is_saved(client, db):
    admin = make_staff(db, make_unit(db), roles=("admin",))
    signed_in(client, admin.username)
    bad = _edit_form(
        db, "2A", t_high_first_h="99", t_low_next_m="x", return_visit_hours="0", name_zh=""
    )
    r = post(client, "/service-levels/2A", bad)
    assert r.status_code == 422
    assert field_error(r.text, "f-sl-t_low_next") == "必须是整数。"
    assert '<details class="panel fold" id="edit" open>' in r.text
    assert 'value="x"' in r.text  # what was typed stays
    bad.pop("t_low_next_m")
    r = post(client, "/service-levels/2A", {**bad, "t_low_next_m": "0"})
    assert field_error(r.text, "f-sl-t_high") == "首次响应时限不能晚于解决时限。"
    assert field_error(r.text, "f-sl-return_visit_hours") == "不能小于 1。"
    assert field_error(r.text, "f-sl-name_zh") == "不能为空。"
    r = post(
        client, "/service-levels/2A", _edit_form(db, "2A", t_normal_next_h="0", t_normal_next_m="0")
    )
    assert field_error(r.text, "f-sl-t_normal_next") == "不能小于 1。"
    r = post(client, "/service-levels/2A", _edit_form(db, "2A", return_visit_hours=" "))
    assert field_error(r.text, "f-sl-return_visit_hours") == "此项必填。"
    r = post(client, "/service-levels/2A", _edit_form(db, "2A", onsite_response_hours="两"))
    assert field_error(r.text, "f-sl-onsite_response_hours") == "必须是整数。"
    i18n.set_locale("en")
    client.cookies.set("kefu_lang", "en")
    r = post(client, "/service-levels/2A", {**bad, "t_low_next_m": "0"}, headers=HX)
    assert r.status_code == 422 and "<html" not in r.text
    assert (
        field_error(r.text, "f-sl-t_high")
        == "The first response cannot be due after the resolution."
    )
    assert len(service.versions(db, "2A")) == 1


def test_durations_read_as_hours_and_minutes():
    i18n.set_locale("zh_CN")
    assert [duration(m) for m in (15, 60, 90, 2880)] == [
        "15 分钟",
        "1 小时",
        "1 小时 30 分钟",
        "48 小时",
    ]
    i18n.set_locale("en")
    assert [duration(m) for m in (15, 60, 90)] == ["15 min", "1 h", "1 h 30 min"]
