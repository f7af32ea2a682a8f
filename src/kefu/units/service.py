"""Actions on the unit tree. Services flush; the edge commits."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from kefu import tree
from kefu.audit.service import diff, record, snapshot
from kefu.config import get_settings
from kefu.errors import Forbidden, Invalid
from kefu.i18n import N_
from kefu.scope import Viewer, get_visible, path_in_subtree
from kefu.units import policy
from kefu.units.models import Unit, UnitFunction
from kefu.units.schemas import UnitCreate, UnitUpdate

AUDITED = (
    "name",
    "parent_id",
    "region_code",
    "timezone",
    "function_names",
    "sort_order",
    "is_active",
    "path",
)


def level_of(unit: Unit) -> str:
    return policy.level_name(unit.depth, get_settings().unit_level_names)


def _require_admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise Forbidden(N_("Only administrators may change the unit tree."))


def get_unit(session: Session, viewer: Viewer, unit_id: int, for_update: bool = False) -> Unit:
    return get_visible(
        session,
        Unit,
        unit_id,
        viewer,
        for_update=for_update,
        options=(selectinload(Unit.functions),),
    )


def first_top_unit(session: Session) -> Unit | None:
    """The oldest root of the tree, if any (bootstrapping the first administrator)."""
    return session.scalars(select(Unit).where(Unit.parent_id.is_(None)).order_by(Unit.id)).first()


def _reload(session: Session, unit_id: int) -> Unit:
    return session.scalars(
        select(Unit)
        .where(Unit.id == unit_id)
        .options(selectinload(Unit.functions))
        .execution_options(populate_existing=True)
    ).one()


def _parent(session: Session, viewer: Viewer, parent_id: int) -> Unit:
    parent = session.scalars(select(Unit).where(Unit.id == parent_id).with_for_update()).first()
    if parent is None or not (viewer.is_admin or _in_view(parent, viewer)):
        raise Invalid.field("parent_id", N_("No such unit."))
    return parent


def _in_view(unit: Unit, viewer: Viewer) -> bool:
    return viewer.unit_path is not None and unit.path.startswith(viewer.unit_path)


def create_unit(session: Session, viewer: Viewer, data: UnitCreate) -> Unit:
    _require_admin(viewer)
    parent = _parent(session, viewer, data.parent_id) if data.parent_id is not None else None
    unit = Unit(
        name=data.name,
        parent_id=parent.id if parent else None,
        region_code=data.region_code,
        timezone=data.timezone or get_settings().default_timezone,
        sort_order=data.sort_order,
        depth=(parent.depth + 1) if parent else 0,
        path=tree.placeholder_path(),
        functions=[UnitFunction(function=f) for f in sorted(set(data.functions))],
    )
    session.add(unit)
    session.flush()
    unit.path = tree.child_path(parent.path if parent else None, unit.id)
    session.flush()
    record(session, viewer, "unit.create", "unit", unit.id, diff({}, snapshot(unit, AUDITED)))
    return unit


def update_unit(session: Session, viewer: Viewer, unit_id: int, data: UnitUpdate) -> Unit:
    unit = get_unit(session, viewer, unit_id, for_update=True)  # out of scope: 404 first
    _require_admin(viewer)
    before = snapshot(unit, AUDITED)
    fields = data.model_dump(exclude_unset=True)
    if "parent_id" in fields and fields["parent_id"] != unit.parent_id:
        _move(session, viewer, unit, fields["parent_id"])
        unit = _reload(session, unit_id)
    for name in ("name", "region_code", "timezone", "sort_order"):
        if fields.get(name) is not None:
            setattr(unit, name, fields[name])
    if fields.get("functions") is not None:
        wanted = set(fields["functions"])
        unit.functions = [f for f in unit.functions if f.function in wanted] + [
            UnitFunction(function=f) for f in sorted(wanted - set(unit.function_names))
        ]
    if fields.get("is_active") is not None and fields["is_active"] != unit.is_active:
        if not fields["is_active"]:
            _check_can_deactivate(session, unit)
        unit.is_active = fields["is_active"]
    session.flush()
    unit = _reload(session, unit_id)
    changes = diff(before, snapshot(unit, AUDITED))
    if changes:
        record(session, viewer, "unit.update", "unit", unit.id, changes)
    return unit


def move_unit(session: Session, viewer: Viewer, unit_id: int, new_parent_id: int | None) -> Unit:
    return update_unit(session, viewer, unit_id, UnitUpdate(parent_id=new_parent_id))


def _move(session: Session, viewer: Viewer, unit: Unit, new_parent_id: int | None) -> None:
    parent = _parent(session, viewer, new_parent_id) if new_parent_id is not None else None
    if parent is not None and tree.would_cycle(unit.path, parent.path):
        raise Invalid.field(
            "parent_id", N_("A unit cannot be moved under itself or one of its own units.")
        )
    tree.move_subtree(session, Unit, unit, parent)


def _check_can_deactivate(session: Session, unit: Unit) -> None:
    from kefu.staff.models import Staff  # staff belong to units; checked only here

    active_below = session.scalar(
        select(func.count())
        .select_from(Staff)
        .join(Unit, Staff.unit_id == Unit.id)
        .where(path_in_subtree(Unit.path, unit.path), Staff.is_active.is_(True))
    )
    if active_below:
        raise Invalid.field(
            "is_active",
            N_("{n} active staff still belong to this unit or the units below it."),
            n=active_below,
        )
