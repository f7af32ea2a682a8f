"""Read-side selects of the unit tree."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from kefu import tree
from kefu.scope import Viewer, path_in_subtree, visible
from kefu.units.models import Unit


def units(
    viewer: Viewer,
    *,
    parent_id: int | None = None,
    under: str | None = None,
    q: str | None = None,
    region_code: str | None = None,
    active: bool | None = None,
) -> Select[Any]:
    """Units the viewer sees, filtered; ordered by the caller (paths give tree order)."""
    stmt = visible(select(Unit), Unit, viewer)
    if parent_id is not None:
        stmt = stmt.where(Unit.parent_id == parent_id)
    if under is not None:
        stmt = stmt.where(path_in_subtree(Unit.path, under))
    if q:
        stmt = stmt.where(Unit.name.contains(q, autoescape=True))
    if region_code:
        stmt = stmt.where(Unit.region_code.startswith(region_code, autoescape=True))
    if active is not None:
        stmt = stmt.where(Unit.is_active.is_(active))
    return stmt


def ancestors(unit: Unit) -> Select[Any]:
    """The units above `unit`, top first (ids read off its path)."""
    return select(Unit).where(Unit.id.in_(tree.ancestor_ids(unit.path))).order_by(Unit.depth)


def by_ids(session: Session, ids: Iterable[int | None]) -> dict[int, Unit]:
    """Units by id, in one query (names shown beside the rows of a page)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {u.id: u for u in session.scalars(select(Unit).where(Unit.id.in_(wanted)))}
