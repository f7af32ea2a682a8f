"""The unit tree pages: browse (page and fragments), create, edit, move."""

from __future__ import annotations

from dataclasses import dataclass

from kefu.audit.models import AuditEntry
from kefu.units.models import Unit
from tests.factories import make_staff, make_unit
from tests.web.helpers import HX, field_error, post, signed_in


@dataclass
class Tree:
    root: Unit  # 浙江省公司
    hz: Unit  # 杭州市分公司, under root
    xh: Unit  # 西湖区支局, under hz
    nb: Unit  # 宁波市分公司, under root (no units below)


def _admin_org(client, db) -> Tree:
    root = make_unit(db, "浙江省公司", region_code="330000")
    hz = make_unit(db, "杭州市分公司", root, region_code="330100")
    xh = make_unit(db, "西湖区支局", hz, region_code="330106")
    nb = make_unit(db, "宁波市分公司", root, region_code="330200")
    admin = make_staff(db, root, roles=("admin",))
    signed_in(client, admin.username)
    return Tree(root, hz, xh, nb)


def test_tree_page_full_and_as_fragment(client, db):
    t = _admin_org(client, db)
    page = client.get("/units")
    assert page.status_code == 200
    assert "<html" in page.text and 'class="sidenav"' in page.text
    assert "浙江省公司" in page.text and "杭州市分公司" in page.text  # the top is open
    assert "西湖区支局" not in page.text  # deeper levels load on demand
    assert f'hx-get="/units/{t.hz.id}/children"' in page.text
    assert ">省</span>" in page.text and ">市</span>" in page.text  # level names, translated
    fragment = client.get("/units", headers=HX)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and 'class="sidenav"' not in fragment.text
    assert "杭州市分公司" in fragment.text


def test_children_load_as_fragment_or_page(client, db):
    t = _admin_org(client, db)
    fragment = client.get(f"/units/{t.root.id}/children", headers=HX)
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<li class="tree-node')
    assert "<html" not in fragment.text and "宁波市分公司" in fragment.text
    # A child with units below gets a toggle that loads them; a leaf gets none.
    assert f'hx-get="/units/{t.hz.id}/children"' in fragment.text
    assert f'hx-get="/units/{t.nb.id}/children"' not in fragment.text
    assert "西湖区支局" not in fragment.text
    page = client.get(f"/units/{t.hz.id}/children")
    assert "<html" in page.text and "西湖区支局" in page.text
    assert "杭州市分公司 的下级单位" in page.text
    empty = client.get(f"/units/{t.xh.id}/children", headers=HX)
    assert "没有下级单位。" in empty.text


def test_unit_page_opens_the_path_to_the_unit(client, db):
    t = _admin_org(client, db)
    page = client.get(f"/units/{t.xh.id}")
    assert page.status_code == 200
    assert 'aria-current="page">西湖区支局' in page.text
    crumbs = page.text.index('class="crumbs"')
    assert page.text.index("浙江省公司", crumbs) < page.text.index("杭州市分公司", crumbs)
    assert ">县</span>" in page.text
    assert "330106" in page.text and "Asia/Shanghai" in page.text


def test_admin_creates_a_unit_under_a_parent(client, db):
    t = _admin_org(client, db)
    r = post(
        client,
        "/units",
        {
            "parent_id": str(t.hz.id),
            "name": "余杭区支局",
            "region_code": "330110",
            "timezone": "",
            "functions": ["service", "technical"],
        },
    )
    assert r.status_code == 303
    created = db.query(Unit).filter_by(name="余杭区支局").one()
    assert r.headers["location"] == f"/units/{created.id}?notice=created"
    assert created.parent_id == t.hz.id and created.timezone == "Asia/Shanghai"
    page = client.get(r.headers["location"])
    assert "已创建。" in page.text
    assert 'aria-current="page">余杭区支局' in page.text
    assert "技术支持" in page.text and "客户服务" in page.text
    entry = db.query(AuditEntry).filter_by(action="unit.create", object_id=str(created.id)).one()
    assert entry.channel == "web"


def test_bad_unit_input_is_shown_beside_each_field_and_nothing_is_saved(client, db):
    t = _admin_org(client, db)
    bad = {"parent_id": str(t.hz.id), "name": "", "region_code": "33", "timezone": "Mars/Base"}
    r = post(client, "/units", bad)
    assert r.status_code == 422
    assert field_error(r.text, "f-add-name") == "不能为空。"
    assert field_error(r.text, "f-add-region_code") == "行政区划代码应为 6、9 或 12 位数字。"
    assert field_error(r.text, "f-add-timezone") == "未知时区。"
    assert 'value="Mars/Base"' in r.text  # what was typed stays
    assert db.query(Unit).filter_by(parent_id=t.hz.id).count() == 1
    fragment = post(client, "/units", bad, headers=HX)
    assert fragment.status_code == 422 and "<html" not in fragment.text
    assert field_error(fragment.text, "f-add-name") == "不能为空。"


def test_edit_unit(client, db):
    t = _admin_org(client, db)
    form = {"name": "西湖分局", "region_code": "330106", "timezone": "Asia/Urumqi"}
    r = post(client, f"/units/{t.xh.id}", {**form, "functions": ["marketing"]})
    assert r.status_code == 303 and r.headers["location"].endswith("notice=saved")
    db.expire_all()
    unit = db.get(Unit, t.xh.id)
    assert (unit.name, unit.timezone) == ("西湖分局", "Asia/Urumqi")
    r = post(client, f"/units/{t.xh.id}", {**form, "name": "长" * 101})
    assert r.status_code == 422
    assert field_error(r.text, "f-edit-name") == "最多 100 个字符。"


def test_move_a_unit_and_refuse_a_cycle_inline(client, db):
    t = _admin_org(client, db)
    r = post(client, f"/units/{t.xh.id}/move", {"parent_id": str(t.nb.id)})
    assert r.status_code == 303
    db.expire_all()
    moved = db.get(Unit, t.xh.id)
    assert moved.parent_id == t.nb.id and moved.path == f"{t.nb.path}{t.xh.id}/"
    page = client.get(f"/units/{t.hz.id}")
    # The move select offers every unit, but not the unit's own subtree.
    assert f'<option value="{t.nb.id}">' in page.text
    assert f'<option value="{t.hz.id}" selected disabled>' not in page.text
    r = post(client, f"/units/{t.root.id}/move", {"parent_id": str(t.xh.id)})
    assert r.status_code == 422
    assert field_error(r.text, "f-move-parent_id") == "单位不能移到自身或其下级单位之下。"
    assert '<details class="panel fold" id="move" open>' in r.text
    db.expire_all()
    assert db.get(Unit, t.root.id).parent_id is None and db.get(Unit, t.root.id).depth == 0
    r = post(client, f"/units/{t.xh.id}/move", {"parent_id": ""})  # to the top
    assert r.status_code == 303
    db.expire_all()
    assert db.get(Unit, t.xh.id).depth == 0


def test_only_admins_see_and_use_the_tree_forms(client, db):
    root = make_unit(db)
    child = make_unit(db, parent=root)
    manager = make_staff(db, root, roles=("manager",))
    signed_in(client, manager.username)
    page = client.get(f"/units/{child.id}")
    assert page.status_code == 200 and 'action="/units"' not in page.text
    form = {"name": "改名", "region_code": "330000", "timezone": "UTC"}
    r = post(client, f"/units/{child.id}", form)
    assert r.status_code == 403
    assert "只有管理员可以修改单位树。" in r.text
    toast = post(client, f"/units/{child.id}/move", {"parent_id": ""}, headers=HX)
    assert toast.status_code == 403
    assert toast.headers["HX-Retarget"] == "#toasts"
    assert toast.text.lstrip().startswith('<div class="toast toast-error"')


def test_unknown_unit_is_a_404_page_or_toast(client, db):
    _admin_org(client, db)
    r = client.get("/units/999999")
    assert r.status_code == 404 and "未找到" in r.text and "<html" in r.text
    r = client.get("/units/999999/children", headers=HX)
    assert r.status_code == 404 and "<html" not in r.text and "toast-error" in r.text
    assert client.get("/units/not-a-number").status_code == 404
