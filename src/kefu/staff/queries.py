"""Read-side selects of staff."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session, selectinload

from kefu.scope import Viewer, path_in_subtree, visible
from kefu.staff.models import Staff, StaffRole
from kefu.units.models import Unit


def staff(
    session: Session,
    viewer: Viewer,
    *,
    unit_id: int | None = None,
    role: str | None = None,
    q: str | None = None,
    active: bool | None = None,
) -> Select[Any]:
    stmt = visible(select(Staff), Staff, viewer).options(selectinload(Staff.role_rows))
    if unit_id is not None:
        path = session.scalar(select(Unit.path).where(Unit.id == unit_id))
        below = select(Unit.id).where(path_in_subtree(Unit.path, path or "/none/"))
        stmt = stmt.where(Staff.unit_id.in_(below))
    if role:
        stmt = stmt.where(Staff.id.in_(select(StaffRole.staff_id).where(StaffRole.role == role)))
    if q:
        stmt = stmt.where(
            or_(
                Staff.display_name.contains(q, autoescape=True),
                Staff.username.contains(q.lower(), autoescape=True),
            )
        )
    if active is not None:
        stmt = stmt.where(Staff.is_active.is_(active))
    return stmt


def by_ids(session: Session, ids: Iterable[int | None]) -> dict[int, Staff]:
    """Staff by id, in one query (names shown beside the rows of a page)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {s.id: s for s in session.scalars(select(Staff).where(Staff.id.in_(wanted)))}
