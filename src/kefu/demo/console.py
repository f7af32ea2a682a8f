"""Demo standard phrases and saved views, so the console's phrase box and sidebar show
something true on first start."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kefu.knowledge import service as phrases
from kefu.knowledge.models import Phrase
from kefu.knowledge.schemas import PhraseCreate
from kefu.scope import Viewer
from kefu.staff.models import Staff, StaffRole
from kefu.tickets import saved_views
from kefu.tickets.schemas import ViewCreate, ViewFilters
from kefu.units.models import Unit

GLOBAL_PHRASES = [
    (
        "受理确认",
        "{contact}您好！您的工单 {ticket_number}「{subject}」已由{agent}受理，"
        "我们将在 {due} 前处理完毕，请保持电话畅通。",
    ),
    (
        "上门预约",
        "{contact}您好，我是{unit}的{agent}。关于工单 {ticket_number}，"
        "我们希望安排工程师上门，请告知您方便的时间。",
    ),
    (
        "请补充信息",
        "{contact}您好，为尽快处理工单 {ticket_number}，"
        "请补充故障发生的时间、现象截图和联系人电话，谢谢配合。",
    ),
    (
        "处理完毕",
        "{contact}您好，工单 {ticket_number} 已处理完毕。如仍有问题，"
        "请直接回复本消息，{agent}会继续跟进。感谢您对我们工作的支持！",
    ),
    (
        "致歉",
        "{contact}您好，对于此次给{customer}带来的不便，我们深表歉意。"
        "{agent}将全程跟进，直至问题彻底解决。",
    ),
]


def _as(session: Session, staff: Staff) -> Viewer:
    unit = session.get(Unit, staff.unit_id)
    roles = session.scalars(select(StaffRole.role).where(StaffRole.staff_id == staff.id))
    return Viewer(
        staff_id=staff.id,
        username=staff.username,
        unit_id=staff.unit_id,
        unit_path=unit.path if unit else None,
        roles=frozenset(roles),
        channel="cli",
    )


def build(
    session: Session, viewer: Viewer, progress: Callable[[str], None] = print
) -> dict[str, int]:
    if session.scalar(select(func.count()).select_from(Phrase)):
        progress("phrases exist already; demo phrases and views left as they are")
        return {"phrases": 0, "views": 0}
    made = {"phrases": 0, "views": 0}
    for title, body in GLOBAL_PHRASES:
        phrases.create_phrase(session, viewer, PhraseCreate(kind="global", title=title, body=body))
        made["phrases"] += 1
    supervisors = session.scalars(
        select(Staff)
        .join(StaffRole, StaffRole.staff_id == Staff.id)
        .where(StaffRole.role == "supervisor", Staff.username.like("%.supervisor"))
        .order_by(Staff.id)
    ).all()
    for person in supervisors:
        who = _as(session, person)
        unit = session.get(Unit, person.unit_id)
        if unit is None or unit.depth > 1:  # the province and the cities share views
            continue
        for name, filters in (
            ("已超时", ViewFilters(breached=True)),
            ("未分派", ViewFilters(assignee="unassigned")),
            ("A 类客户紧急单", ViewFilters(tier=["A"], priority=["urgent"])),
        ):
            saved_views.create_view(
                session, who, ViewCreate(name=name, filters=filters, unit_id=unit.id)
            )
            made["views"] += 1
        phrases.create_phrase(
            session,
            who,
            PhraseCreate(
                kind="unit",
                unit_id=unit.id,
                title=f"{unit.name}服务热线",
                body="{contact}您好，如需进一步帮助，请拨打" + unit.name + "服务热线，"
                "并报工单号 {ticket_number}。",
            ),
        )
        made["phrases"] += 1
    session.flush()
    progress(f"{made['phrases']} standard phrases, {made['views']} shared views")
    return made
