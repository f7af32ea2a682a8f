"""Demo custom ticket fields: a few per category, as a service desk would define them (none
required, so every channel and benchmark on a demo database opens tickets as before)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from kefu.scope import Viewer
from kefu.tickets import fields
from kefu.tickets.models import Category, TicketField
from kefu.tickets.schemas import ChoiceIn, TicketFieldCreate

SPECS = [
    TicketFieldCreate(
        key="line_id",
        category_code="fault_repair",
        label_zh="线路编号",
        label_en="Line ID",
        type="text",
        position=10,
    ),
    TicketFieldCreate(
        key="fault_kind",
        category_code="fault_repair",
        label_zh="故障类型",
        label_en="Kind of fault",
        type="choice",
        position=20,
        choices=[
            ChoiceIn(value="outage", label_zh="完全中断", label_en="Outage"),
            ChoiceIn(value="degraded", label_zh="性能下降", label_en="Degraded"),
            ChoiceIn(value="intermittent", label_zh="时断时续", label_en="Intermittent"),
        ],
    ),
    TicketFieldCreate(
        key="visit_date",
        category_code="installation",
        label_zh="预约上门日期",
        label_en="Visit date",
        type="date",
        position=10,
    ),
    TicketFieldCreate(
        key="order_amount",
        category_code="order_delivery",
        label_zh="订单金额（元）",
        label_en="Order amount (CNY)",
        type="number",
        position=10,
    ),
    TicketFieldCreate(
        key="crm_ref",
        category_code=None,
        label_zh="客户参考号",
        label_en="Customer reference",
        type="text",
        position=90,
    ),
]


def build(session: Session, viewer: Viewer, progress: Callable[[str], None]) -> int:
    """Define the demo fields that are not there yet (categories that exist only)."""
    have = set(session.scalars(select(TicketField.key)))
    codes = set(session.scalars(select(Category.code)))
    made = 0
    for spec in SPECS:
        if spec.key in have or (spec.category_code and spec.category_code not in codes):
            continue
        fields.create_definition(session, viewer, spec)
        made += 1
    progress(f"{made} custom ticket fields")
    return made
