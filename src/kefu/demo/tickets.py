"""Demo tickets: a year of service (50,000+ tickets) with working-hour peaks, quiet holidays,
more requests from key accounts, responses and resolutions mostly within their targets —
and some breaches — so the console and its timers show a living service centre.

Written in bulk; due times come from the real calendar arithmetic (kefu.sla.policy).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from kefu.audit.service import record
from kefu.clock import now
from kefu.config import get_settings
from kefu.customers.models import Customer
from kefu.db import is_postgres
from kefu.scope import Viewer
from kefu.service_levels.models import ServiceLevel, SlaTarget
from kefu.sla import holidays
from kefu.sla import service as sla
from kefu.sla.policy import due_at
from kefu.staff.models import Staff, StaffRole
from kefu.tickets.models import Ticket, TicketEvent
from kefu.units.models import Unit

SH = ZoneInfo("Asia/Shanghai")
CATEGORIES = [
    ("fault_repair", 30),
    ("technical_support", 22),
    ("consultation", 15),
    ("order_delivery", 10),
    ("installation", 8),
    ("upgrade_notice", 4),
    ("complaint", 4),
    ("change_request", 3),
    ("other", 4),
]
PRIORITIES = [("urgent", 5), ("high", 20), ("normal", 60), ("low", 15)]
CHANNELS = [("phone", 40), ("portal", 20), ("email", 20), ("api", 10), ("walk_in", 5), ("visit", 5)]
SUBJECTS = {
    "fault_repair": [
        "专线中断",
        "网络时断时续",
        "设备告警无法消除",
        "机房断电后业务未恢复",
        "语音线路无法呼出",
    ],
    "technical_support": [
        "VPN 配置咨询",
        "云主机性能下降",
        "数据库连接超时",
        "证书即将过期",
        "接口调用报错 502",
    ],
    "consultation": ["套餐资费咨询", "扩容方案咨询", "新业务报价", "合同续签咨询"],
    "order_delivery": ["订单进度查询", "发票开具", "设备到货延迟", "交付验收安排"],
    "installation": ["新装宽带预约", "分支机构开通", "设备上门安装"],
    "upgrade_notice": ["系统升级窗口确认", "割接通知回执"],
    "complaint": ["维修人员迟到", "故障反复发生", "客服回复不及时"],
    "change_request": ["带宽调整申请", "变更安装地址"],
    "other": ["资料更新", "其他事项"],
}
BATCH = 5000


def _weighted(rng: random.Random, table: list[tuple[str, int]]) -> str:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


def build(
    session: Session,
    viewer: Viewer,
    count: int = 52000,
    progress: Callable[[str], None] = print,
    today: date | None = None,
) -> dict[str, int]:
    if session.scalar(select(func.count()).select_from(Ticket)):
        progress("tickets exist already; demo tickets left as they are")
        return {"tickets": 0, "events": 0}
    _routing_rules(session, viewer)
    rng = random.Random(4242)
    today = today or now().astimezone(SH).date()
    customers = session.execute(
        select(
            Customer.id,
            Customer.owning_unit_id,
            Customer.tier,
            Customer.service_level,
            Customer.account_manager_id,
        ).where(Customer.status != "lost")
    ).all()
    if not customers:
        raise RuntimeError("build the demo customers first")
    # Cumulative weights, computed once: random.choices would redo them on every call.
    weights = list(accumulate({"A": 8, "B": 3}.get(c.tier or "C", 1) for c in customers))
    agents: dict[int, list[int]] = {}
    for sid, uid in session.execute(
        select(Staff.id, Staff.unit_id)
        .join(StaffRole, StaffRole.staff_id == Staff.id)
        .where(StaffRole.role == "agent")
    ):
        agents.setdefault(uid, []).append(sid)
    parents = dict(session.execute(select(Unit.id, Unit.parent_id)).all())
    levels = {
        code: vid
        for code, vid in session.execute(select(ServiceLevel.code, ServiceLevel.current_version_id))
    }
    targets = {
        (t.version_id, t.priority): (t.first_response_minutes, t.resolution_minutes)
        for t in session.scalars(select(SlaTarget).where(SlaTarget.category_code.is_(None)))
    }
    calendars: dict[int, object] = {}
    provider = holidays.china
    share = get_settings().sla_warn_share

    def calendar(unit_id: int):  # type: ignore[no-untyped-def]
        if unit_id not in calendars:
            calendars[unit_id] = sla.calendar_for_unit(session, unit_id)[0]
        return calendars[unit_id]

    def agent_for(unit_id: int, manager: int | None) -> int | None:
        if manager and rng.random() < 0.6:
            return manager
        u: int | None = unit_id
        while u is not None:
            if agents.get(u):
                return rng.choice(agents[u])
            u = parents.get(u)
        return None

    # Arrivals: per day by the official calendar, per hour with morning and afternoon peaks.
    days = [today - timedelta(days=d) for d in range(365, -1, -1)]
    day_weight = list(accumulate(3.0 if provider(d) else 0.35 for d in days))
    hours = [8, 9, 10, 11, 13, 14, 15, 16, 17, 19, 21]
    hour_weight = list(accumulate([4, 9, 10, 8, 5, 9, 9, 7, 4, 1.5, 0.7]))
    current = now()
    tickets: list[dict[str, object]] = []
    events: list[dict[str, object]] = []
    next_id = (session.scalar(select(func.max(Ticket.id))) or 0) + 1
    for _ in range(count):
        day = rng.choices(days, cum_weights=day_weight)[0]
        local = datetime.combine(
            day, time(rng.choices(hours, cum_weights=hour_weight)[0], rng.randrange(60)), SH
        )
        created = local.astimezone(UTC)
        if created >= current:
            created = current - timedelta(minutes=rng.randrange(5, 600))
        c = rng.choices(customers, cum_weights=weights)[0]
        category = _weighted(rng, CATEGORIES)
        priority = _weighted(rng, PRIORITIES)
        level = c.service_level or "1A"
        version = levels.get(level)
        fr_min, res_min = targets.get((version or 0, priority), (240, 4800))
        cal = calendar(c.owning_unit_id)
        fr_due = due_at(cal, created, fr_min, provider)  # type: ignore[arg-type]
        res_due = due_at(cal, created, res_min, provider)  # type: ignore[arg-type]
        # Warning instants, as the intake sets them: the sweep escalates open demo tickets.
        fr_warn = due_at(cal, created, fr_min * share, provider)  # type: ignore[arg-type]
        res_warn = due_at(cal, created, res_min * share, provider)  # type: ignore[arg-type]
        late = rng.random() < 0.07
        fr_at: datetime | None = (
            fr_due + timedelta(minutes=rng.randrange(5, 240))
            if late
            else created + (fr_due - created) * rng.uniform(0.05, 0.9)
        )
        res_at = (
            res_due + timedelta(hours=rng.randrange(1, 48))
            if rng.random() < 0.06
            else created + (res_due - created) * rng.uniform(0.2, 0.95)
        )
        tid = next_id
        next_id += 1
        resolved_at: datetime | None = res_at
        closed_at: datetime | None = res_at + timedelta(days=3)
        state = "closed"
        if res_at > current:
            state, resolved_at, closed_at = (
                rng.choice(["open", "open", "pending", "on_hold"]),
                None,
                None,
            )
            if fr_at is not None and fr_at > current:
                state, fr_at = "new", None
        elif closed_at is not None and closed_at > current:
            state, closed_at = "resolved", None
        subject = rng.choice(SUBJECTS[category])
        tickets.append(
            {
                "id": tid,
                "customer_id": c.id,
                "contact_id": None,
                "channel": _weighted(rng, CHANNELS),
                "category_code": category,
                "priority": priority,
                "subject": subject,
                "description": f"<p>{subject}，请尽快处理。</p>",
                "site_region_code": None,
                "owning_unit_id": c.owning_unit_id,
                "handling_unit_id": c.owning_unit_id,
                "assignee_id": agent_for(c.owning_unit_id, c.account_manager_id),
                "state": state,
                "tags": [],
                "custom_fields": {},
                "service_level": level,
                "service_level_version_id": version,
                "first_response_due": fr_due,
                "first_response_warn_at": fr_warn,
                "resolution_warn_at": res_warn,
                "next_response_due": None,
                "resolution_due": res_due,
                "first_response_at": fr_at,
                "resolved_at": resolved_at,
                "closed_at": closed_at,
                "paused_at": None,
                "paused_minutes": 0.0,
                "business_minutes_used": None,
                "breached_first_response": bool(fr_at and fr_at > fr_due)
                or (fr_at is None and current > fr_due),
                "breached_resolution": bool(resolved_at and resolved_at > res_due)
                or (resolved_at is None and current > res_due),
                "created_by": "demo",
                "idempotency_key": None,
                "version": 1,
                "created_at": created,
                "updated_at": resolved_at or fr_at or created,
            }
        )
        events.append(
            {
                "ticket_id": tid,
                "at": created,
                "kind": "created",
                "actor": "demo",
                "public": True,
                "body": "",
                "data": {},
            }
        )
        if fr_at:
            events.append(
                {
                    "ticket_id": tid,
                    "at": fr_at,
                    "kind": "reply",
                    "actor": "demo",
                    "public": True,
                    "body": "<p>您好，已收到，正在处理。</p>",
                    "data": {},
                }
            )
        if resolved_at:
            events.append(
                {
                    "ticket_id": tid,
                    "at": resolved_at,
                    "kind": "state",
                    "actor": "demo",
                    "public": True,
                    "body": "",
                    "data": {"frm": "open", "to": "resolved", "reason": ""},
                }
            )
    tickets.sort(key=lambda t: t["id"])  # type: ignore[arg-type, return-value]
    for i in range(0, len(tickets), BATCH):
        session.execute(insert(Ticket), tickets[i : i + BATCH])
    if is_postgres(session):
        session.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('tickets', 'id'), "
                "(SELECT max(id) FROM tickets))"
            )
        )
    for i in range(0, len(events), BATCH * 2):
        session.execute(insert(TicketEvent), events[i : i + BATCH * 2])
    open_now = sum(1 for t in tickets if t["state"] not in ("resolved", "closed"))
    progress(f"{len(tickets)} tickets over a year ({open_now} open now), {len(events)} events")
    record(
        session,
        viewer,
        "demo.tickets",
        "ticket",
        "*",
        {"tickets": {"before": 0, "after": len(tickets)}},
    )
    session.flush()
    return {"tickets": len(tickets), "events": len(events)}


def _routing_rules(session: Session, viewer: Viewer) -> None:
    """Two rules the routing page can show and test: on-site jobs to the site's unit
    (linked service), technical support to the nearest unit with that function."""
    from kefu.tickets import routing
    from kefu.tickets.schemas import RoutingRuleCreate

    if routing.rules(session):
        return
    routing.create_rule(
        session,
        viewer,
        RoutingRuleCreate(kind="site_region", note="上门服务由现场所在地单位就近响应"),
    )
    routing.create_rule(
        session,
        viewer,
        RoutingRuleCreate(
            kind="category_function",
            category_code="technical_support",
            function="technical",
            note="技术支持交给设有技术支持部门的最近单位",
        ),
    )
