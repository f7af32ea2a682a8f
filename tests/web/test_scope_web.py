"""The web shows each person only their subtree, and 404 for anything outside it."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.scope_matrix import build_org
from tests.web.helpers import post, signed_in


def _usernames(client: TestClient) -> set[str]:
    names: set[str] = set()
    url: str | None = "/staff"
    while url:
        html = client.get(url).text
        names |= set(re.findall(r"<td><code>([^<]+)</code></td>", html))
        found = re.search(r'href="([^"]+)"[^>]*rel="next"', html)
        url = found.group(1).replace("&amp;", "&") if found else None
    return names


def _unit_options(client: TestClient) -> set[int]:
    """The units offered by the staff filter: every unit the viewer may see."""
    html = client.get("/staff").text
    select = html[
        html.index('name="unit_id"') : html.index("</select>", html.index('name="unit_id"'))
    ]
    return {int(v) for v in re.findall(r'<option value="(\d+)"', select)}


def test_county_manager_sees_only_their_subtree(app, db):
    org = build_org(db)
    staff_unit = {p.username: p.unit_id for p in [*org.people.values(), org.admin]}
    staff_ids = {p.username: p.id for p in [*org.people.values(), org.admin]}
    for key, person in org.people.items():
        below = org.subtree(key)
        with TestClient(app) as browser:
            signed_in(browser, person.username)
            assert _unit_options(browser) == below, key
            expected = {name for name, unit_id in staff_unit.items() if unit_id in below}
            assert _usernames(browser) == expected, key
            home = browser.get("/").text
            assert f'id="count-units">{len(below)}<' in home
            for unit in org.units.values():
                want = 200 if unit.id in below else 404
                assert browser.get(f"/units/{unit.id}").status_code == want, (key, unit.name)
                r = browser.get(f"/units/{unit.id}/children")
                assert r.status_code == want, (key, unit.name)
            for name, sid in staff_ids.items():
                want = 200 if name in expected else 404
                assert browser.get(f"/staff/{sid}").status_code == want, (key, name)


def test_writes_outside_the_subtree_answer_404(client, db):
    org = build_org(db)
    signed_in(client, org.people["county_x"].username)
    other = org.people["county_z"]
    form = {"display_name": "越界", "email": "", "phone": "", "locale": "zh_CN"}
    assert post(client, f"/staff/{other.id}", form).status_code == 404
    assert post(client, f"/staff/{other.id}/active", {"active": "0"}).status_code == 404
    r = post(client, f"/units/{org.county_z.id}/move", {"parent_id": str(org.county_x.id)})
    assert r.status_code == 404
    page = client.get(f"/units/{org.county_z.id}")
    assert page.status_code == 404 and "Z县" not in page.text
