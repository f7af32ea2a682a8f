"""The demo organisation: a province company, its cities and counties, and their staff.

Region codes are real GB/T 2260 codes of Zhejiang province.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kefu.auth import passwords
from kefu.scope import Viewer
from kefu.staff import service as staff_service
from kefu.staff.models import Staff
from kefu.staff.schemas import StaffCreate
from kefu.units import service as unit_service
from kefu.units.models import Unit
from kefu.units.schemas import UnitCreate

DEMO_PASSWORD = "kefu-demo-2026"

TREE: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "杭州市分公司",
        "330100",
        [
            ("西湖区支局", "330106"),
            ("余杭区支局", "330110"),
            ("萧山区支局", "330109"),
            ("临安区支局", "330112"),
        ],
    ),
    (
        "宁波市分公司",
        "330200",
        [("海曙区支局", "330203"), ("鄞州区支局", "330212"), ("余姚市支局", "330281")],
    ),
    (
        "温州市分公司",
        "330300",
        [("鹿城区支局", "330302"), ("瑞安市支局", "330381"), ("乐清市支局", "330382")],
    ),
    (
        "绍兴市分公司",
        "330600",
        [("越城区支局", "330602"), ("柯桥区支局", "330603"), ("诸暨市支局", "330681")],
    ),
]

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋"
    "唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "霞",
    "平",
    "刚",
    "桂英",
    "晓东",
    "志强",
    "建华",
    "丹",
    "鑫",
    "婷",
    "宇航",
    "思远",
    "佳怡",
    "子涵",
    "浩然",
    "梓萱",
    "雨桐",
    "俊杰",
    "欣怡",
    "海波",
    "红梅",
]


def already_built(session: Session) -> bool:
    return bool(session.scalar(select(func.count()).select_from(Unit)))


def build(
    session: Session, viewer: Viewer, progress: Callable[[str], None] = print
) -> dict[str, int]:
    """Create the tree and staff (about 16 units, 40+ staff). Idempotent: skips if built."""
    if already_built(session):
        progress("units exist already; demo organisation left as it is")
        return {"units": 0, "staff": 0}
    rng = random.Random(2026)
    names = _names(rng)
    shared_hash = passwords.hash_password(DEMO_PASSWORD)

    def unit(name: str, code: str, parent: Unit | None, functions: list[str]) -> Unit:
        return unit_service.create_unit(
            session,
            viewer,
            UnitCreate(
                name=name,
                parent_id=parent.id if parent else None,
                region_code=code,
                functions=functions,
            ),
        )  # type: ignore[arg-type]

    def person(username: str, u: Unit, roles: list[str]) -> Staff:
        s = staff_service.create_staff(
            session,
            viewer,
            StaffCreate(
                username=username,
                display_name=next(names),
                unit_id=u.id,
                roles=roles,  # type: ignore[arg-type]
                phone=f"1{rng.choice('3589')}{rng.randrange(10**8, 10**9)}",
            ),
        )
        s.password_hash = shared_hash
        return s

    province = unit("浙江省公司", "330000", None, ["service", "business", "marketing", "technical"])
    progress(f"unit {province.name}")
    staff_count = 0
    person("admin", province, ["admin", "manager"])
    person("province.manager", province, ["manager"])
    person("province.supervisor", province, ["supervisor"])
    staff_count += 3
    for ci, (city_name, city_code, counties) in enumerate(TREE, start=1):
        city = unit(city_name, city_code, province, ["service", "business", "technical"])
        progress(f"unit {city.name}")
        person(f"city{ci}.manager", city, ["manager"])
        person(f"city{ci}.supervisor", city, ["supervisor"])
        person(f"city{ci}.agent", city, ["agent"])
        staff_count += 3
        for ki, (county_name, county_code) in enumerate(counties, start=1):
            county = unit(county_name, county_code, city, ["service"])
            person(f"c{ci}{ki}.supervisor", county, ["supervisor"])
            for ai in range(1, 3):
                person(f"c{ci}{ki}.agent{ai}", county, ["agent"])
            staff_count += 3
        progress(f"  {len(counties)} counties under {city.name}")
    session.flush()
    units = 1 + len(TREE) + sum(len(c) for _, _, c in TREE)
    return {"units": units, "staff": staff_count}


def _names(rng: random.Random):  # type: ignore[no-untyped-def]
    seen: set[str] = set()
    while True:
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        if name not in seen:
            seen.add(name)
            yield name
