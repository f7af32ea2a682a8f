"""The scope matrix, reused by every capability's tests.

`build_org()` makes a province with two cities and three counties, a manager in each
unit, and an admin. `check_scope()` then proves, for one endpoint, that each of them sees
exactly the records their subtree owns: the list (every page) and every detail, and that an
out-of-scope id answers 404 on reads and on writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from kefu.staff.models import Staff
from kefu.units.models import Unit
from tests.factories import make_staff, make_unit, token_for


@dataclass
class Org:
    province: Unit
    city_a: Unit
    city_b: Unit
    county_x: Unit  # under city A
    county_y: Unit  # under city A
    county_z: Unit  # under city B
    people: dict[str, Staff] = field(default_factory=dict)  # unit key → its manager
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    admin: Staff | None = None

    @property
    def units(self) -> dict[str, Unit]:
        return {
            k: getattr(self, k)
            for k in ("province", "city_a", "city_b", "county_x", "county_y", "county_z")
        }

    def subtree(self, key: str) -> set[int]:
        root = self.units[key]
        return {u.id for u in self.units.values() if u.path.startswith(root.path)}


def build_org(db: Session, roles: tuple[str, ...] = ("manager",)) -> Org:
    province = make_unit(db, "测试省", region_code="330000")
    city_a = make_unit(db, "甲市", province, region_code="330100")
    city_b = make_unit(db, "乙市", province, region_code="330200")
    org = Org(
        province,
        city_a,
        city_b,
        make_unit(db, "X县", city_a, region_code="330106"),
        make_unit(db, "Y县", city_a, region_code="330110"),
        make_unit(db, "Z县", city_b, region_code="330203"),
    )
    for key, unit in org.units.items():
        org.people[key] = make_staff(db, unit, username=f"m-{key.replace('_', '-')}", roles=roles)
    org.admin = make_staff(db, province, username="scope-admin", roles=("admin",))
    for key, person in org.people.items():
        org.headers[key] = token_for(db, person)
    org.headers["admin"] = token_for(db, org.admin)
    return org


def list_all(client: TestClient, url: str, headers: dict[str, str], limit: int = 2) -> list[Any]:
    """Every item of a paginated list, following next_cursor (small pages on purpose)."""
    items: list[Any] = []
    cursor = None
    # Filters in the URL stay (httpx replaces a URL's query by `params`, it does not merge).
    path, _, query = url.partition("?")
    for _ in range(1000):
        params: list[tuple[str, Any]] = [*parse_qsl(query), ("limit", limit)]
        if cursor:
            params.append(("cursor", cursor))
        r = client.get(path, headers=headers, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"}
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            return items
    raise AssertionError("pagination never ended")


def check_scope(
    client: TestClient,
    org: Org,
    *,
    list_url: str,
    detail_url: Callable[[Any], str],
    records: dict[Any, Unit],
    extra_visible: Callable[[str], Iterable[Any]] = lambda key: (),
    write: tuple[str, dict[str, Any]] | None = None,
) -> None:
    """`records` maps every record id of this kind to its owning unit."""
    assert records, "the matrix needs records to look at"
    viewers = [*org.units.keys(), "admin"]
    for key in viewers:
        if key == "admin":
            expected = set(records)
        else:
            below = org.subtree(key)
            expected = {rid for rid, unit in records.items() if unit.id in below}
            expected |= set(extra_visible(key))
        got = {item["id"] for item in list_all(client, list_url, org.headers[key])}
        assert got == expected, f"{key} lists {sorted(got)}, expected {sorted(expected)}"
        for rid in records:
            r = client.get(detail_url(rid), headers=org.headers[key])
            want = 200 if rid in expected else 404
            assert r.status_code == want, f"{key} GET {detail_url(rid)}: {r.status_code}"
            if want == 404:
                assert r.headers["content-type"].startswith("application/problem+json")
                if write is not None:
                    method, body = write
                    w = client.request(method, detail_url(rid), headers=org.headers[key], json=body)
                    assert w.status_code == 404, (
                        f"{key} {method} {detail_url(rid)}: {w.status_code}"
                    )
