"""Customer archives on the web: the scoped list, a new customer, the 360° page and its
sub-forms (archive, contacts, revenue, pins), each as a page and as an HTMX fragment."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import event, select

from kefu import clock
from kefu.audit.models import AuditEntry
from kefu.customers import service as customer_service
from kefu.customers.models import Contact, Customer, RevenueRecord
from kefu.customers.schemas import ContactCreate, CustomerUpdate, RevenueCreate
from kefu.i18n import set_locale
from kefu.scope import SYSTEM
from kefu.staff.models import Staff
from kefu.tiering.models import TierHistory
from kefu.units.models import Unit
from kefu.web import charts
from tests.factories import make_customer, make_staff, make_unit
from tests.scope_matrix import build_org
from tests.web.helpers import HX, field_error, post, signed_in

TODAY = datetime(2026, 6, 20, 4, 0, tzinfo=UTC)


@dataclass
class World:
    province: Unit
    city: Unit
    county: Unit
    other: Unit  # a county under another city
    admin: Staff
    manager: Staff  # of the county
    agent: Staff  # of the county
    big: Customer  # A, 4A, in the county, with revenue
    small: Customer  # C, 1A, in the county
    far: Customer  # in the other county


def _world(db) -> World:
    clock.set_now(lambda: TODAY)
    province = make_unit(db, "浙江省公司", region_code="330000")
    city = make_unit(db, "杭州市分公司", province, region_code="330100")
    county = make_unit(db, "西湖区支局", city, region_code="330106")
    other_city = make_unit(db, "宁波市分公司", province, region_code="330200")
    other = make_unit(db, "海曙区支局", other_city, region_code="330203")
    admin = make_staff(db, province, username="boss", roles=("admin",), display_name="王管理")
    manager = make_staff(db, county, username="xh-mgr", roles=("manager",), display_name="李经理")
    agent = make_staff(db, county, username="xh-agent", display_name="张客服")
    big = make_customer(
        db,
        county,
        "杭州恒达科技有限公司",
        short_name="恒达科技",
        industry_code="it",
        account_manager_id=agent.id,
        is_important=True,
        notes="年度框架协议客户",
    )
    small = make_customer(db, county, "西湖小微商贸有限公司")
    far = make_customer(db, other, "宁波远景物流有限公司", region_code="330203")
    big.tier, big.service_level, big.tier_rule = "A", "4A", "A:top_band"
    big.revenue_12m = Decimal("1234567.50")
    small.tier, small.service_level, small.tier_rule = "C", "1A", "C:always"
    small.revenue_12m = Decimal("800")
    for months_back, amount in (
        (0, "1000"),
        (1, "12000.50"),
        (2, "8000"),
        (12, "300"),
        (14, "5000"),
    ):
        y, m = divmod(2026 * 12 + 5 - months_back, 12)
        db.add(RevenueRecord(customer_id=big.id, date=date(y, m + 1, 10), amount=Decimal(amount)))
    db.flush()
    return World(province, city, county, other, admin, manager, agent, big, small, far)


def _ids(html: str) -> list[int]:
    """The customers linked from the rows of a list."""
    body = html.split("<tbody>")[1] if "<tbody>" in html else ""
    return [int(i) for i in re.findall(r'<td><a href="/customers/(\d+)">', body)]


# --- the list -------------------------------------------------------------------------------


def test_list_full_page_and_fragments(client, db):
    w = _world(db)
    signed_in(client, w.admin.username)
    page = client.get("/customers")
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    assert '<a href="/customers" aria-current="page"' in page.text  # the menu entry
    row = page.text[page.text.index(f'href="/customers/{w.big.id}"') :]
    row = row[: row.index("</tr>")]
    assert "恒达科技" in row and '<span class="tier tier-a"' in row and ">4A<" in row
    assert "西湖区支局" in row and "张客服" in row and "¥1,234,567.50" in row
    assert "正常" in row and "重要" in row
    results = client.get("/customers", headers={**HX, "HX-Target": "results"})
    assert results.status_code == 200 and "<form" not in results.text
    assert results.text.lstrip().startswith("<table") and "恒达科技" in results.text
    content = client.get("/customers", headers=HX)
    assert 'class="sidenav"' not in content.text and 'class="filters"' in content.text
    client.cookies.set("kefu_lang", "en")
    english = client.get("/customers").text
    assert "CN¥1,234,567.50" in english and "In service" in english


def test_list_filters_and_sorts(client, db):
    w = _world(db)
    signed_in(client, w.admin.username)

    def ids(**params: str) -> list[int]:
        return _ids(client.get("/customers", params=params).text)

    assert set(ids()) == {w.big.id, w.small.id, w.far.id}
    assert ids(q="恒达") == [w.big.id]
    assert ids(q="恒达科") == [w.big.id]  # the short name too
    assert ids(tier="A") == [w.big.id] and ids(tier="C") == [w.small.id]
    assert ids(service_level="1A") == [w.small.id]
    assert ids(important="1") == [w.big.id]
    assert set(ids(important="0")) == {w.small.id, w.far.id}
    assert set(ids(unit_id=str(w.city.id))) == {w.big.id, w.small.id}  # the unit and below
    assert ids(status="lost") == []
    assert set(ids(tier="Z", status="gone")) == {w.big.id, w.small.id, w.far.id}  # ignored
    assert ids(sort="revenue")[:2] == [w.big.id, w.small.id]
    assert ids(sort="name") == sorted(ids(), key=lambda i: db.get(Customer, i).name)
    html = client.get("/customers", params={"tier": "A", "sort": "revenue"}).text
    assert '<option value="A" selected>' in html and '<option value="revenue" selected>' in html
    assert client.get("/customers", params={"cursor": "%%%"}).status_code == 422


def test_list_pages_through_cursors_in_every_sort(client, db):
    w = _world(db)
    for i in range(52):
        c = make_customer(db, w.county, f"批量客户{i:02d}有限公司")
        c.revenue_12m = Decimal(i % 7)  # ties: the id breaks them
    db.flush()
    signed_in(client, w.admin.username)
    for sort in ("id", "name", "revenue"):
        seen: list[int] = []
        url: str | None = f"/customers?sort={sort}"
        while url:
            html = client.get(url).text
            seen += _ids(html)
            found = re.search(r'href="([^"]+)"[^>]*rel="next"', html)
            url = found.group(1).replace("&amp;", "&") if found else None
        assert len(seen) == 55 and len(set(seen)) == 55, sort
    fragment = client.get("/customers?sort=revenue", headers={**HX, "HX-Target": "results"})
    assert 'hx-target="#results"' in fragment.text and 'rel="next"' in fragment.text


def test_list_reads_names_in_one_query_per_kind(client, db, engine):
    """Owning units and account managers of a page: a query per kind, not one per row."""
    w = _world(db)
    at = datetime(2026, 6, 1, tzinfo=UTC)

    def add(n: int) -> None:
        for _ in range(n):
            k = len(db.scalars(select(Staff.id)).all())
            person = Staff(
                username=f"am{k}",
                display_name=f"经理{k}",
                unit_id=w.county.id,
                locale="zh_CN",
                is_active=True,
                failed_logins=0,
                created_at=at,
                updated_at=at,
            )
            db.add(person)
            db.flush()
            # Every other one lies outside the viewer's county, managed by the viewer.
            outside = k % 2 == 0
            make_customer(
                db,
                w.other if outside else w.county,
                f"名单客户{k}有限公司",
                account_manager_id=w.manager.id if outside else person.id,
            )
        db.flush()

    def statements() -> tuple[int, str]:
        seen: list[str] = []

        def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            html = client.get("/customers").text
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(seen), html

    signed_in(client, w.manager.username)
    add(4)
    few, _ = statements()
    add(40)
    many, html = statements()
    assert many == few, f"{few} statements for 6 rows, {many} for 46"
    assert "海曙区支局" in html and "李经理" in html and "经理43" in html


def test_web_and_api_sort_the_same_way():
    from kefu.api.v1.customers import SORTS as API_SORTS
    from kefu.web.customers import SORTS

    assert SORTS.keys() == API_SORTS.keys()
    for name, (key, descending) in SORTS.items():
        api_key, api_descending = API_SORTS[name]
        assert [c.key for c in key] == [c.key for c in api_key] and descending == api_descending


# --- a new customer -----------------------------------------------------------------------------


def test_new_customer_offers_only_visible_units_and_translated_industries(client, db):
    w = _world(db)
    signed_in(client, w.manager.username)
    page = client.get("/customers/new")
    assert page.status_code == 200
    units = page.text[page.text.index('name="owning_unit_id"') :]
    units = units[: units.index("</select>")]
    assert set(map(int, re.findall(r'value="(\d+)"', units))) == {w.county.id}
    assert f'<option value="{w.county.id}" selected>' in units
    assert '<option value="it">信息技术</option>' in page.text
    assert "张客服" in page.text and "王管理" not in page.text  # account managers in view
    client.cookies.set("kefu_lang", "en")
    assert '<option value="it">Information technology</option>' in client.get("/customers/new").text
    fragment = client.get("/customers/new", headers=HX)
    assert 'class="sidenav"' not in fragment.text and 'id="customer-form"' in fragment.text


def test_create_a_customer(client, db):
    w = _world(db)
    signed_in(client, w.manager.username)
    form = {
        "name": "西湖新锐软件有限公司",
        "short_name": "新锐软件",
        "credit_code": "",
        "external_id": "CRM-9",
        "industry_code": "it",
        "region_code": "330106",
        "owning_unit_id": str(w.county.id),
        "account_manager_id": str(w.agent.id),
        "parent_id": "",
        "status": "active",
        "is_potential": "1",
        "notes": "展会上认识",
    }
    r = post(client, "/customers", form)
    assert r.status_code == 303, r.text
    created = db.query(Customer).filter_by(name="西湖新锐软件有限公司").one()
    assert r.headers["location"] == f"/customers/{created.id}?notice=created"
    assert created.is_potential and not created.is_important and created.credit_code is None
    assert created.account_manager_id == w.agent.id and created.notes == "展会上认识"
    entry = db.query(AuditEntry).filter_by(action="customer.create", object_id=str(created.id))
    assert entry.one().channel == "web"
    page = client.get(r.headers["location"])
    assert "已创建。" in page.text and "新锐软件" in page.text
    hx = post(client, "/customers", {**form, "name": "西湖新锐二号", "external_id": ""}, headers=HX)
    assert hx.status_code == 200 and hx.headers["HX-Redirect"].startswith("/customers/")


def test_bad_customer_input_is_shown_beside_each_field_and_nothing_is_saved(client, db):
    w = _world(db)
    signed_in(client, w.manager.username)
    before = db.query(Customer).count()
    bad = {
        "name": "",
        "credit_code": "91330106MA2XXXXXX9",
        "region_code": "33",
        "owning_unit_id": str(w.other.id),  # not in this manager's view
        "status": "active",
    }
    r = post(client, "/customers", bad)
    assert r.status_code == 422
    assert field_error(r.text, "f-c-name") == "此项必填。"
    assert field_error(r.text, "f-c-region_code") == "至少 6 个字符。"
    assert "统一社会信用代码无效" in field_error(r.text, "f-c-credit_code")
    assert 'value="91330106MA2XXXXXX9"' in r.text  # what was typed stays
    r = post(client, "/customers", {**bad, "name": "某公司", "region_code": "990000"})
    assert field_error(r.text, "f-c-region_code") == "未知的行政区划代码。"
    valid = {**bad, "name": "某公司", "region_code": "330106", "credit_code": ""}
    r = post(client, "/customers", valid)
    assert r.status_code == 422 and field_error(r.text, "f-c-owning_unit_id") == "没有这个单位。"
    r = post(client, "/customers", {"name": "某公司", "status": "active"})
    assert field_error(r.text, "f-c-region_code") == "此项必填。"
    assert field_error(r.text, "f-c-owning_unit_id") == "此项必填。"
    client.cookies.set("kefu_lang", "en")
    r = post(client, "/customers", {**bad, "name": "某公司", "region_code": "990000"}, headers=HX)
    assert r.status_code == 422 and "<html" not in r.text
    assert field_error(r.text, "f-c-region_code") == "Unknown administrative division code."
    db.expire_all()
    assert db.query(Customer).count() == before


# --- the 360° page ----------------------------------------------------------------------------


def test_360_page_shows_the_archive_revenue_and_the_reason_for_the_tier(client, db):
    w = _world(db)
    signed_in(client, w.agent.username)
    page = client.get(f"/customers/{w.big.id}")
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    html = page.text
    for text in (
        "杭州恒达科技有限公司",
        "信息技术",
        "330106",
        "西湖区支局",
        "张客服",
        "年度框架协议客户",
    ):
        assert text in html, text
    assert "A — 高价值段（累计收入占比 &lt; 70%）" in html
    assert "四星级服务" in html and "专属客户经理" in html and "4 小时内上门响应" in html
    # Revenue: this month 1,000, last month 12,000.50; 12 and 14 months ago fall outside.
    kpis = dict(re.findall(r'kpi-label">([^<]+)</span><span class="kpi-value">([^<]+)<', html))
    assert kpis == {
        "近 12 个月": "¥21,000.50",
        "上月": "¥12,000.50",
        "本月至今": "¥1,000.00",
        "36 个月合计": "¥26,300.50",
    }
    start = html.index('<svg class="chart"')  # the revenue chart (the bell is an icon)
    svg = html[start : html.index("</svg>", start)]
    assert svg.count('<rect class="chart-bar') == 36 and 'class="chart-bar is-partial"' in svg
    assert f'aria-labelledby="revenue-{w.big.id}-title revenue-{w.big.id}-desc"' in svg
    assert "<title" in svg and "月度收入，2023年7月至2026年6月" in svg
    assert "2026年5月: ¥12,000.50" in svg and ">1万<" in svg
    assert "¥8,000.00" in html and "2026年4月10日" in html  # the records, per locale
    assert 'id="pin"' not in html  # an agent may not pin
    client.cookies.set("kefu_lang", "en")
    english = client.get(f"/customers/{w.big.id}").text
    assert "A — top value band (cumulative revenue share &lt; 70 %)" in english
    assert "Revenue by month, Jul 2023 to Jun 2026" in english and ">10K<" in english
    assert "May 2026: CN¥12,000.50" in english and "Apr 10, 2026" in english


def test_360_page_and_its_parts_as_fragments(client, db):
    w = _world(db)
    contact = customer_service.add_contact(db, SYSTEM, w.big.id, ContactCreate(name="赵联系"))
    db.flush()
    signed_in(client, w.manager.username)
    url = f"/customers/{w.big.id}"
    content = client.get(url, headers=HX)
    assert content.status_code == 200 and 'class="sidenav"' not in content.text
    assert '<svg class="chart"' in content.text and 'id="contacts"' in content.text
    for block, marker in (
        ("contacts", "赵联系"),
        ("records", "¥12,000.50"),
        ("tier", "高价值段"),
        ("history", "还没有等级变更。"),
    ):
        part = client.get(url, headers={**HX, "HX-Target": block})
        assert part.status_code == 200 and marker in part.text, block
        assert '<svg class="chart"' not in part.text and f'id="{block}"' not in part.text, block
    editing = client.get(f"{url}?contact={contact.id}", headers={**HX, "HX-Target": "contacts"})
    assert f'action="/customers/{w.big.id}/contacts/{contact.id}#contacts"' in editing.text
    assert 'value="赵联系"' in editing.text
    full = client.get(f"{url}?contact={contact.id}")
    assert full.text.startswith("<!doctype html>") and 'value="赵联系"' in full.text
    for page in (f"{url}/edit", f"{url}/timeline"):
        assert client.get(page).text.startswith("<!doctype html>"), page
        fragment = client.get(page, headers=HX)
        assert fragment.status_code == 200 and 'class="sidenav"' not in fragment.text, page


def test_group_links_and_branches(client, db):
    w = _world(db)
    head = make_customer(db, w.city, "恒达集团有限公司", is_group=True)
    branch = make_customer(db, w.county, "恒达集团西湖分公司", parent=head)
    shop = make_customer(db, w.county, "恒达集团西湖门店", parent=branch)
    signed_in(client, w.admin.username)
    html = client.get(f"/customers/{shop.id}").text
    group = html[html.index('id="group"') :]
    assert f'<a href="/customers/{branch.id}">恒达集团西湖分公司</a>' in group  # the parent
    assert f'<a href="/customers/{head.id}">恒达集团有限公司</a>' in group  # the group head
    crumbs = html[html.index('class="crumbs"') : html.index("</p>", html.index('class="crumbs"'))]
    assert crumbs.index("恒达集团有限公司") < crumbs.index("恒达集团西湖分公司")
    html = client.get(f"/customers/{head.id}").text
    assert "恒达集团西湖分公司" in html[html.index('id="group"') :]
    branches = client.get(f"/customers?parent_id={head.id}").text
    assert _ids(branches) == [branch.id] and "恒达集团有限公司 的分支机构" in branches


def test_edit_the_archive_and_refuse_a_cycle_inline(client, db):
    w = _world(db)
    head = make_customer(db, w.county, "恒达集团有限公司", is_group=True)
    branch = make_customer(db, w.county, "恒达集团西湖分公司", parent=head)
    signed_in(client, w.manager.username)
    page = client.get(f"/customers/{head.id}/edit")
    assert (
        'value="恒达集团有限公司"' in page.text
        and 'id="f-c-is_group" name="is_group" value="1" checked' in page.text
    )
    form = {
        "name": "恒达控股集团有限公司",
        "short_name": "恒达控股",
        "region_code": "330106",
        "owning_unit_id": str(w.county.id),
        "account_manager_id": "",
        "industry_code": "",
        "status": "active",
        "is_group": "1",
        "is_important": "1",
        "notes": "升级为控股集团",
    }
    r = post(client, f"/customers/{head.id}", form)
    assert r.status_code == 303 and r.headers["location"] == f"/customers/{head.id}?notice=saved"
    db.expire_all()
    saved = db.get(Customer, head.id)
    assert (saved.name, saved.short_name, saved.is_important) == (
        "恒达控股集团有限公司",
        "恒达控股",
        True,
    )
    change = db.query(AuditEntry).filter_by(action="customer.update", object_id=str(head.id)).one()
    assert set(change.changes) == {"name", "short_name", "is_important", "notes"}
    timeline = client.get(f"/customers/{head.id}").text
    assert "档案变更：名称、简称、重要和备注" in timeline
    r = post(client, f"/customers/{head.id}", {**form, "parent_id": str(branch.id)})
    assert r.status_code == 422
    assert field_error(r.text, "f-c-parent_id") == "客户不能成为自身或其下属分支机构的分支。"
    assert f'value="{branch.id}"' in r.text
    db.expire_all()
    assert db.get(Customer, head.id).parent_id is None
    r = post(client, f"/customers/{head.id}", {**form, "name": ""}, headers=HX)
    assert r.status_code == 422 and "<html" not in r.text
    assert field_error(r.text, "f-c-name") == "不能为空。"


def test_an_account_manager_edits_a_customer_owned_outside_their_unit(client, db):
    w = _world(db)
    # Owned by the other county, managed by the county agent: visible to the agent.
    w.far.account_manager_id = w.agent.id
    db.flush()
    signed_in(client, w.agent.username)
    assert w.far.id in _ids(client.get("/customers").text)
    page = client.get(f"/customers/{w.far.id}/edit")
    assert "海曙区支局" in page.text and 'type="hidden" name="owning_unit_id"' in page.text
    values = {
        "name": w.far.name,
        "region_code": "330203",
        "owning_unit_id": str(w.other.id),
        "account_manager_id": str(w.agent.id),
        "status": "active",
        "notes": "客户经理补充",
    }
    r = post(client, f"/customers/{w.far.id}", values)
    assert r.status_code == 303, r.text
    db.expire_all()
    assert db.get(Customer, w.far.id).notes == "客户经理补充"


# --- contacts, revenue, pins ------------------------------------------------------------------


def test_contacts_add_edit_delete_with_inline_errors(client, db):
    w = _world(db)
    signed_in(client, w.agent.username)
    url = f"/customers/{w.big.id}/contacts"
    bad = {
        "name": "钱经理",
        "phone": "12345",
        "email": "nope",
        "preferred_channel": "phone",
        "locale": "zh_CN",
    }
    r = post(client, url, bad)
    assert r.status_code == 422
    assert "不是有效的手机号码" in field_error(r.text, "f-contact-new-phone")
    assert field_error(r.text, "f-contact-new-email") == "电子邮件地址无效。"
    assert '<details class="fold fold-inline panel-pad" id="add-contact" open>' in r.text
    fragment = post(client, url, bad, headers={**HX, "HX-Target": "contacts"})
    assert (
        fragment.status_code == 422
        and "<html" not in fragment.text
        and '<svg class="chart"' not in fragment.text
    )
    assert "不是有效的手机号码" in field_error(fragment.text, "f-contact-new-phone")
    assert db.query(Contact).filter_by(customer_id=w.big.id).count() == 0
    good = {
        **bad,
        "phone": "0571-87654321",
        "email": "qian@hengda.cn",
        "title": "采购经理",
        "portal_access": "1",
    }
    r = post(client, url, good)
    assert r.status_code == 303 and r.headers["location"].endswith("?notice=created#contacts")
    contact = db.query(Contact).filter_by(customer_id=w.big.id).one()
    assert (contact.phone, contact.portal_access, contact.title) == (
        "0571-87654321",
        True,
        "采购经理",
    )
    page = client.get(f"/customers/{w.big.id}").text
    assert "钱经理" in page and "qian@hengda.cn" in page and "客户门户" in page
    edit = f"{url}/{contact.id}"
    r = post(client, edit, {**good, "phone": "1380013800"})
    assert r.status_code == 422
    assert "不是有效的手机号码" in field_error(r.text, f"f-contact-{contact.id}-phone")
    r = post(client, edit, {**good, "phone": "13800138000", "portal_access": ""})
    assert r.status_code == 303
    db.expire_all()
    contact = db.get(Contact, contact.id)
    assert contact.phone == "13800138000" and not contact.portal_access
    r = post(client, f"{edit}/delete")
    assert r.status_code == 303 and r.headers["location"].endswith("notice=deleted#contacts")
    assert db.query(Contact).filter_by(customer_id=w.big.id).count() == 0
    # A contact of another customer is not reached through this one.
    db.expunge(contact)  # deleted by the page; SQLite may hand its id out again
    other = customer_service.add_contact(db, SYSTEM, w.small.id, ContactCreate(name="孙某"))
    db.flush()
    assert post(client, f"{url}/{other.id}", good).status_code == 404
    assert post(client, f"{url}/{other.id}/delete").status_code == 404


def test_add_revenue_with_inline_errors(client, db):
    w = _world(db)
    signed_in(client, w.agent.username)
    url = f"/customers/{w.small.id}/revenue"
    before = db.query(RevenueRecord).filter_by(customer_id=w.small.id).count()
    for values, message in (
        ({"date": "2026-02-30", "amount": "100"}, ("f-revenue-date", "必须是日期（YYYY-MM-DD）。")),
        ({"date": "", "amount": "100"}, ("f-revenue-date", "此项必填。")),
        ({"date": "2026-06-01", "amount": "abc"}, ("f-revenue-amount", "必须是数字。")),
        ({"date": "2026-06-01", "amount": "1.234"}, ("f-revenue-amount", "最多 2 位小数。")),
        ({"date": "2026-06-01", "amount": "-5"}, ("f-revenue-amount", "不能小于 0。")),
    ):
        r = post(client, url, values)
        assert r.status_code == 422, values
        assert field_error(r.text, message[0]) == message[1], values
    r = post(
        client, url, {"date": "2026-02-30", "amount": "1"}, headers={**HX, "HX-Target": "records"}
    )
    assert r.status_code == 422 and "<html" not in r.text and '<svg class="chart"' not in r.text
    assert db.query(RevenueRecord).filter_by(customer_id=w.small.id).count() == before
    good = {
        "date": "2026-06-01",
        "amount": "¥12,345.60",
        "business_line": "专线",
        "source_ref": "INV-1",
    }
    r = post(client, url, good)
    assert r.status_code == 303 and r.headers["location"].endswith("#records")
    row = db.query(RevenueRecord).filter_by(customer_id=w.small.id, source_ref="INV-1").one()
    assert (row.amount, row.business_line, row.date) == (
        Decimal("12345.60"),
        "专线",
        date(2026, 6, 1),
    )
    assert "¥12,345.60" in client.get(f"/customers/{w.small.id}").text


def test_managers_pin_and_unpin_a_tier(client, db):
    w = _world(db)
    signed_in(client, w.manager.username)
    url = f"/customers/{w.small.id}"
    html = client.get(url).text
    assert 'id="pin"' in html
    assert "近 36 个月没有收入。" in html and '<svg class="chart"' not in html  # no empty chart
    r = post(client, f"{url}/pin", {"tier": "A", "reason": "x"})
    assert r.status_code == 422 and field_error(r.text, "f-pin-reason") == "至少 2 个字符。"
    r = post(
        client,
        f"{url}/pin",
        {"tier": "Z", "reason": "战略合作伙伴"},
        headers={**HX, "HX-Target": "tier"},
    )
    assert r.status_code == 422 and "<html" not in r.text and field_error(r.text, "f-pin-tier")
    db.expire_all()
    assert not db.get(Customer, w.small.id).tier_pinned
    r = post(client, f"{url}/pin", {"tier": "A", "reason": "战略合作伙伴"})
    assert r.status_code == 303 and r.headers["location"].endswith("notice=pinned#tier")
    db.expire_all()
    pinned = db.get(Customer, w.small.id)
    assert (pinned.tier, pinned.tier_pinned, pinned.pin_reason) == ("A", True, "战略合作伙伴")
    html = client.get(url).text
    assert "由经理锁定：战略合作伙伴" in html and "解除锁定" in html
    history = html[html.index('id="history"') :]
    assert "xh-mgr" in history and '<span class="tier tier-c"' in history
    assert "（由经理锁定：战略合作伙伴）" in html  # the timeline says why, translated
    assert "/tiering/runs/" not in html[html.index('id="activity"') :]
    r = post(client, f"{url}/unpin")
    assert r.status_code == 303
    db.expire_all()
    assert not db.get(Customer, w.small.id).tier_pinned
    assert db.query(TierHistory).filter_by(customer_id=w.small.id).count() == 1


def test_agents_cannot_pin(client, db):
    w = _world(db)
    signed_in(client, w.agent.username)
    r = post(client, f"/customers/{w.small.id}/pin", {"tier": "A", "reason": "想要升级"})
    assert r.status_code == 403 and "只有经理可以锁定客户等级。" in r.text
    toast = post(client, f"/customers/{w.small.id}/unpin", headers=HX)
    assert toast.status_code == 403 and toast.headers["HX-Retarget"] == "#toasts"
    db.expire_all()
    assert not db.get(Customer, w.small.id).tier_pinned


def test_the_timeline_pages_back_in_time(client, db):
    w = _world(db)
    for i in range(25):
        clock.set_now(lambda i=i: datetime(2026, 6, 21, 8, i, tzinfo=UTC))
        customer_service.update_customer(db, SYSTEM, w.small.id, CustomerUpdate(notes=f"第{i}次"))
    db.flush()
    clock.set_now(lambda: TODAY)
    signed_in(client, w.agent.username)
    html = client.get(f"/customers/{w.small.id}").text
    activity = html[html.index('id="activity"') :]
    assert activity.count('<li class="tl-item') == 20 and "档案变更：备注" in activity
    older = re.search(r'href="(/customers/\d+/timeline\?before=[^"]+)"', activity)
    assert older
    url = older.group(1).replace("&amp;", "&")
    fragment = client.get(url, headers={**HX, "HX-Target": "older"})
    assert fragment.status_code == 200 and fragment.text.lstrip().startswith("<li")
    assert fragment.text.count('<li class="tl-item') == 6  # 5 more changes and the creation
    assert "新建客户档案" in fragment.text and 'id="older"' not in fragment.text
    page = client.get(url)
    assert page.text.startswith("<!doctype html>") and page.text.count('<li class="tl-item') == 6


# --- visibility -------------------------------------------------------------------------------


def test_each_manager_lists_exactly_their_subtree_and_nothing_else(app, db):
    org = build_org(db)
    owned = {
        make_customer(db, unit, f"{unit.name}客户{i}").id: unit
        for unit in org.units.values()
        for i in range(2)
    }
    for key, person in org.people.items():
        below = org.subtree(key)
        expected = {cid for cid, unit in owned.items() if unit.id in below}
        with TestClient(app) as browser:
            signed_in(browser, person.username)
            assert set(_ids(browser.get("/customers").text)) == expected, key
            for cid in owned:
                want = 200 if cid in expected else 404
                assert browser.get(f"/customers/{cid}").status_code == want, (key, cid)


def test_writes_to_another_countys_customer_answer_404(client, db):
    org = build_org(db)
    theirs = make_customer(db, org.county_z, "Z县客户", region_code="330203")
    contact = customer_service.add_contact(db, SYSTEM, theirs.id, ContactCreate(name="周某"))
    customer_service.add_revenue(
        db, SYSTEM, theirs.id, RevenueCreate(date=date(2026, 1, 5), amount=Decimal("10"))
    )
    db.flush()
    signed_in(client, org.people["county_x"].username)
    base = f"/customers/{theirs.id}"
    for url in (base, f"{base}/edit", f"{base}/timeline", f"{base}?contact={contact.id}"):
        r = client.get(url)
        assert r.status_code == 404 and "Z县客户" not in r.text and "周某" not in r.text, url
    archive = {
        "name": "越界",
        "region_code": "330106",
        "owning_unit_id": str(org.county_x.id),
        "status": "active",
    }
    writes = {
        base: archive,
        f"{base}/contacts": {"name": "越界", "preferred_channel": "phone", "locale": "zh_CN"},
        f"{base}/contacts/{contact.id}": {
            "name": "越界",
            "preferred_channel": "phone",
            "locale": "zh_CN",
        },
        f"{base}/contacts/{contact.id}/delete": {},
        f"{base}/revenue": {"date": "2026-06-01", "amount": "1"},
        f"{base}/pin": {"tier": "A", "reason": "越界锁定"},
        f"{base}/unpin": {},
    }
    for url, form in writes.items():
        assert post(client, url, form).status_code == 404, url
        assert post(client, url, {}).status_code == 404, url  # invalid input: still 404
        assert post(client, url, form, headers=HX).status_code == 404, url
    assert client.get(f"/customers?parent_id={theirs.id}").status_code == 404
    db.expire_all()
    kept = db.get(Customer, theirs.id)
    assert kept.name == "Z县客户" and not kept.tier_pinned
    assert db.query(Contact).filter_by(customer_id=theirs.id).count() == 1
    assert db.query(RevenueRecord).filter_by(customer_id=theirs.id).count() == 1


# --- the chart ----------------------------------------------------------------------------------


def test_chart_axis_steps_are_round():
    assert charts.ticks(0) == [0, 1]
    assert charts.ticks(95) == [0, 25, 50, 75, 100]
    assert charts.ticks(1_234_567) == [0, 500_000, 1_000_000, 1_500_000]
    assert charts.ticks(30_000) == [0, 10_000, 20_000, 30_000]


def test_chart_is_accessible_markup_with_escaped_text():
    set_locale("en")
    bars = [
        charts.Bar(label="<Jan>", value=Decimal(0), text="0", tick="Jan", group="2026"),
        charts.Bar(label="Feb", value=Decimal(250), text="250", partial=True),
    ]
    svg = str(charts.bar_chart(bars, chart_id="c1", title="A & B", desc="two months"))
    assert svg.startswith('<svg class="chart" id="c1"') and 'role="img"' in svg
    assert '<title id="c1-title">A &amp; B</title>' in svg and "&lt;Jan&gt;: 0" in svg
    assert svg.count("<rect") == 2 and 'class="chart-bar is-partial"' in svg
    assert 'height="0"' in svg  # an empty month draws no bar
    assert ">2026<" in svg and ">Jan<" in svg and ">300<" in svg  # axis top: a round 300
