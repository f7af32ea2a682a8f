"""Demo customers: 5,000+ companies with realistic Chinese names, groups with branches in
several cities, contacts, three years of monthly revenue with a long tail, then a tiering
run applied — so the tier mix and the 360 pages look true on first start.

Rows are written in bulk (one INSERT per table and batch); the tiering run is the real one.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date
from decimal import Decimal

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from kefu.audit.service import record
from kefu.clock import now
from kefu.customers.models import Contact, Customer, RevenueRecord
from kefu.customers.policy import credit_check_char
from kefu.db import is_postgres
from kefu.scope import Viewer
from kefu.staff.models import Staff
from kefu.tiering import service as tiering
from kefu.units.models import Unit

CITY_NAMES = {"3301": "杭州", "3302": "宁波", "3303": "温州", "3306": "绍兴"}
TRADE = [
    "恒达",
    "华信",
    "东方",
    "远景",
    "瑞丰",
    "鼎盛",
    "宏图",
    "天成",
    "金桥",
    "立新",
    "永安",
    "中恒",
    "佳禾",
    "新峰",
    "汇通",
    "博远",
    "正泰",
    "海天",
    "明珠",
    "星辰",
    "和润",
    "万象",
    "嘉诚",
    "锦程",
    "同创",
    "智远",
    "长青",
    "润达",
    "兴业",
    "华美",
    "安泰",
    "盛世",
    "思源",
    "众合",
    "弘毅",
    "达成",
    "启明",
    "昌盛",
    "信达",
    "德力",
]
TRADE_PINYIN = [
    "hengda",
    "huaxin",
    "dongfang",
    "yuanjing",
    "ruifeng",
    "dingsheng",
    "hongtu",
    "tiancheng",
    "jinqiao",
    "lixin",
    "yongan",
    "zhongheng",
    "jiahe",
    "xinfeng",
    "huitong",
    "boyuan",
    "zhengtai",
    "haitian",
    "mingzhu",
    "xingchen",
    "herun",
    "wanxiang",
    "jiacheng",
    "jincheng",
    "tongchuang",
    "zhiyuan",
    "changqing",
    "runda",
    "xingye",
    "huamei",
    "antai",
    "shengshi",
    "siyuan",
    "zhonghe",
    "hongyi",
    "dacheng",
    "qiming",
    "changsheng",
    "xinda",
    "deli",
]
BUSINESS = [
    ("精密机械", "manufacturing"),
    ("电子科技", "it"),
    ("信息技术", "it"),
    ("纺织", "manufacturing"),
    ("化工", "manufacturing"),
    ("物流", "transport"),
    ("建设工程", "construction"),
    ("医疗器械", "healthcare"),
    ("商贸", "retail"),
    ("新能源", "energy"),
    ("农业发展", "agriculture"),
    ("食品", "manufacturing"),
    ("汽车零部件", "manufacturing"),
    ("软件", "it"),
    ("环保科技", "energy"),
    ("文化传媒", "other"),
    ("教育科技", "education"),
    ("金融服务", "finance"),
]
SUFFIX = ["有限公司", "有限公司", "有限公司", "股份有限公司", "有限责任公司"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
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
    "霞",
    "平",
    "刚",
    "晓东",
    "志强",
    "建华",
    "丹",
    "鑫",
    "婷",
    "海燕",
    "国平",
]
TITLES = ["总经理", "副总经理", "信息部经理", "采购经理", "行政主管", "财务总监", "技术负责人"]
LINES = ["专线", "云服务", "语音", "数据中心", "物联网", "安防"]
BATCH = 5000


def build(
    session: Session,
    viewer: Viewer,
    count: int = 5200,
    progress: Callable[[str], None] = print,
    today: date | None = None,
) -> dict[str, int]:
    """Create `count` customers (plus group branches) with contacts and revenue."""
    if session.scalar(select(func.count()).select_from(Customer)):
        progress("customers exist already; demo customers left as they are")
        return {"customers": 0, "contacts": 0, "revenue_records": 0}
    rng = random.Random(20261125)
    today = today or now().date()
    counties = list(
        session.execute(
            select(Unit.id, Unit.region_code).where(Unit.depth == 2, Unit.is_active.is_(True))
        ).all()
    )
    if not counties:
        raise RuntimeError("build the demo organisation first")
    agents_by_unit: dict[int, list[int]] = {}
    for staff_id, unit_id in session.execute(select(Staff.id, Staff.unit_id)):
        agents_by_unit.setdefault(unit_id, []).append(staff_id)
    start_id = (session.scalar(select(func.max(Customer.id))) or 0) + 1
    customers: list[dict[str, object]] = []
    names: set[str] = set()
    next_id = start_id

    def company(region: str, group_word: str = "") -> tuple[str, int, str]:
        while True:
            i = rng.randrange(len(TRADE))
            biz, industry = rng.choice(BUSINESS)
            city = CITY_NAMES.get(region[:4], "浙江")
            name = f"{city}{TRADE[i]}{biz}{group_word or rng.choice(SUFFIX)}"
            if name not in names:
                names.add(name)
                return name, i, industry

    def add(
        region: str, unit_id: int, parent: dict[str, object] | None = None, **flags: object
    ) -> dict[str, object]:
        nonlocal next_id
        cid = next_id
        next_id += 1
        if parent is not None:
            base = str(parent["name"]).replace("集团有限公司", "")
            city = CITY_NAMES.get(region[:4], "")
            name = f"{base}{city}分公司"
            names.add(name)
            trade_i, industry = int(str(parent["_trade"])), str(parent["industry_code"])
        else:
            name, trade_i, industry = company(
                region, "集团有限公司" if flags.get("is_group") else ""
            )
        body = f"91{region[:6]}MA{rng.randrange(16**7):07X}".replace("I", "J").replace("O", "P")
        body = "".join(c if c in "0123456789ABCDEFGHJKLMNPQRTUWXY" else "X" for c in body)[:17]
        row: dict[str, object] = {
            "id": cid,
            "name": name,
            "short_name": name[2:6] if len(name) > 6 else None,
            "credit_code": body + credit_check_char(body),
            "external_id": f"CRM-{cid:07d}",
            "parent_id": parent["id"] if parent else None,
            "path": f"{parent['path']}{cid}/" if parent else f"/{cid}/",
            "depth": 1 if parent else 0,
            "industry_code": industry,
            "region_code": region,
            "owning_unit_id": unit_id,
            "account_manager_id": rng.choice(agents_by_unit.get(unit_id, [None])),
            "is_important": bool(flags.get("is_important")),
            "is_group": bool(flags.get("is_group")),
            "is_potential": bool(flags.get("is_potential")),
            "status": str(flags.get("status", "active")),
            "notes": "",
            "tier_pinned": False,
            "revenue_12m": Decimal("0"),
            "created_at": now(),
            "updated_at": now(),
            "_trade": trade_i,
        }
        customers.append(row)
        return row

    groups = max(count // 60, 5)
    for _ in range(groups):
        unit_id, region = rng.choice(counties)
        head = add(region, unit_id, is_group=True, is_important=rng.random() < 0.3)
        for _ in range(rng.randint(2, 6)):
            b_unit, b_region = rng.choice(counties)
            add(b_region, b_unit, parent=head)
    while len(customers) < count:
        unit_id, region = rng.choice(counties)
        roll = rng.random()
        add(
            region,
            unit_id,
            is_important=roll < 0.01,
            is_potential=0.01 <= roll < 0.04,
            status="dormant"
            if 0.04 <= roll < 0.07
            else "lost"
            if 0.07 <= roll < 0.09
            else "active",
        )
    progress(f"{len(customers)} customers ({groups} groups with branches)")
    for i in range(0, len(customers), BATCH):
        session.execute(
            insert(Customer),
            [
                {k: v for k, v in row.items() if not k.startswith("_")}
                for row in customers[i : i + BATCH]
            ],
        )
    if is_postgres(session):
        session.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('customers', 'id'), "
                "(SELECT max(id) FROM customers))"
            )
        )

    contacts = []
    for row in customers:
        for k in range(rng.randint(1, 3)):
            person = rng.choice(SURNAMES) + rng.choice(GIVEN)
            pinyin = TRADE_PINYIN[int(str(row["_trade"]))]
            contacts.append(
                {
                    "customer_id": row["id"],
                    "name": person,
                    "title": rng.choice(TITLES),
                    "phone": f"1{rng.choice('3589')}{rng.randrange(10**8, 10**9)}",
                    "email": f"contact{row['id']}.{k}@{pinyin}.com.cn",
                    "preferred_channel": rng.choice(["phone", "phone", "email", "wechat"]),
                    "locale": "zh_CN",
                    "portal_access": k == 0,
                    "is_group_admin": bool(row["is_group"]) and k == 0,
                    "created_at": now(),
                    "updated_at": now(),
                }
            )
    for i in range(0, len(contacts), BATCH):
        session.execute(insert(Contact), contacts[i : i + BATCH])
    progress(f"{len(contacts)} contacts")

    months = [_month(today, back) for back in range(36, 0, -1)]
    revenue = []
    for row in customers:
        if row["is_potential"]:
            continue
        # Pareto-distributed yearly revenue: a few customers carry most of it.
        yearly = min(rng.paretovariate(1.16) * 20000, 50_000_000)
        if row["is_group"]:
            yearly *= 5
        first = 0 if rng.random() > 0.08 else rng.randrange(24, 36)  # some are new
        last = 36 if row["status"] == "active" else rng.randrange(12, 30)
        lines = rng.sample(LINES, k=rng.randint(1, 2))
        for m in months[first:last]:
            amount = Decimal(str(round(yearly / 12 * rng.uniform(0.6, 1.4), 2)))
            revenue.append(
                {
                    "customer_id": row["id"],
                    "date": m,
                    "amount": amount,
                    "currency": "CNY",
                    "business_line": rng.choice(lines),
                    "source_ref": f"BILL-{m:%Y%m}-{row['id']}",
                    "created_at": now(),
                }
            )
    for i in range(0, len(revenue), BATCH * 4):
        session.execute(insert(RevenueRecord), revenue[i : i + BATCH * 4])
    progress(f"{len(revenue)} monthly revenue records over three years")
    record(
        session,
        viewer,
        "demo.customers",
        "customer",
        "*",
        {"customers": {"before": 0, "after": len(customers)}},
    )
    session.flush()
    run = tiering.start_run(session, viewer, today)
    tiering.apply_run(session, viewer, run.id)
    tiers = run.summary["tiers"]
    progress(f"tiering run #{run.id} applied: A {tiers['A']}, B {tiers['B']}, C {tiers['C']}")
    return {"customers": len(customers), "contacts": len(contacts), "revenue_records": len(revenue)}


def _month(today: date, back: int) -> date:
    """The 15th of the month `back` months before today's."""
    y, m = divmod(today.year * 12 + today.month - 1 - back + 1, 12)
    return date(y, m + 1, 15)
