"""Saved views of the agent console: named queue filters, personal or shared with a unit.

A view stores filters only. Its tickets are always read through `queries.filtered`, which
starts from the viewer's scope, so a view shared by a province supervisor shows a county
agent no more than the county agent sees anyway.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from kefu.audit.service import record
from kefu.clock import now
from kefu.errors import Conflict, FieldError, Forbidden, Invalid
from kefu.i18n import N_
from kefu.scope import Viewer, get_visible, visible
from kefu.tickets import fields
from kefu.tickets.models import Category, TicketView, shared_with_me
from kefu.tickets.schemas import ViewCreate, ViewFilters, ViewUpdate
from kefu.tickets.service import clean_tags
from kefu.units.models import Unit

SHARE_ROLES = ("supervisor", "manager")  # and admins
STALE = N_("Someone else changed this view meanwhile; reload it and try again.")


def views(session: Session, viewer: Viewer) -> Select[Any]:
    """Every view the viewer may read (the API's list): theirs, those shared with their unit
    or above, and — to manage them — those shared with units below."""
    return visible(select(TicketView), TicketView, viewer)


def sidebar(session: Session, viewer: Viewer) -> tuple[list[TicketView], list[TicketView]]:
    """The views the console offers: (personal, shared with my unit or above)."""
    me = viewer.staff_id or -1
    order = (TicketView.position, TicketView.name, TicketView.id)
    mine = session.scalars(
        select(TicketView)
        .where(TicketView.owner_id == me, TicketView.unit_id.is_(None))
        .order_by(*order)
        .limit(100)
    )
    shared = session.scalars(
        select(TicketView)
        .where(TicketView.unit_id.is_not(None), shared_with_me(TicketView.unit_id, viewer))
        .order_by(*order)
        .limit(100)
    )
    return list(mine), list(shared)


def get_view(
    session: Session, viewer: Viewer, view_id: int, for_update: bool = False
) -> TicketView:
    return get_visible(session, TicketView, view_id, viewer, for_update=for_update)


def filters_of(view: TicketView) -> ViewFilters:
    return ViewFilters.model_validate(view.filters or {})


def may_edit(viewer: Viewer, view: TicketView, unit_path: str | None = None) -> bool:
    """Personal views: their owner. Shared ones: supervisors and managers whose subtree holds
    the unit. Admins: any."""
    if viewer.is_admin:
        return True
    if view.unit_id is None:
        return view.owner_id == viewer.staff_id
    return (
        viewer.has_role(*SHARE_ROLES)
        and viewer.unit_path is not None
        and unit_path is not None
        and unit_path.startswith(viewer.unit_path)
    )


def _unit_path(session: Session, unit_id: int | None) -> str | None:
    if unit_id is None:
        return None
    return session.scalar(select(Unit.path).where(Unit.id == unit_id))


def _check_filters(session: Session, viewer: Viewer, f: ViewFilters) -> None:
    if f.category:
        known = set(
            session.scalars(
                select(Category.code).where(
                    Category.code.in_(f.category), Category.is_active.is_(True)
                )
            )
        )
        unknown = [
            FieldError(f"filters.category.{i}", N_("Unknown category."), {"category": code})
            for i, code in enumerate(f.category)
            if code not in known
        ]
        if unknown:
            raise Invalid(errors=unknown)
    if f.tag is not None:
        try:
            clean_tags([f.tag])
        except Invalid as exc:
            raise Invalid.field("filters.tag", exc.errors[0].message) from exc
    bad = []
    for i, expression in enumerate(f.field):
        try:
            fields.parse_filter(session, expression)
        except Invalid as exc:
            bad += [FieldError(f"filters.field.{i}", e.message, e.params) for e in exc.errors]
    if bad:
        raise Invalid(errors=bad)
    if f.unit_id is not None:
        unit = session.scalar(visible(select(Unit.id).where(Unit.id == f.unit_id), Unit, viewer))
        if unit is None:
            raise Invalid.field("filters.unit_id", N_("No such unit."))


def _check_share(session: Session, viewer: Viewer, unit_id: int | None) -> None:
    """Sharing with a unit: supervisors and managers, with a unit of their own subtree."""
    if unit_id is None:
        return
    if not viewer.has_role(*SHARE_ROLES):
        raise Forbidden(N_("Only supervisors and managers may share a view with a unit."))
    path = _unit_path(session, unit_id)
    inside = path is not None and (
        viewer.is_admin or (viewer.unit_path is not None and path.startswith(viewer.unit_path))
    )
    if not inside:
        raise Invalid.field("unit_id", N_("No such unit."))


def _audit_fields(view: TicketView) -> dict[str, Any]:
    return {
        "name": view.name,
        "unit_id": view.unit_id,
        "filters": dict(view.filters or {}),
        "position": view.position,
    }


def create_view(session: Session, viewer: Viewer, data: ViewCreate) -> TicketView:
    if viewer.staff_id is None:
        raise Forbidden()
    _check_filters(session, viewer, data.filters)
    _check_share(session, viewer, data.unit_id)
    at = now()
    view = TicketView(
        name=data.name,
        owner_id=viewer.staff_id,
        unit_id=data.unit_id,
        filters=data.filters.model_dump(mode="json"),
        position=data.position,
        created_at=at,
        updated_at=at,
    )
    session.add(view)
    session.flush()
    after = _audit_fields(view)
    record(
        session,
        viewer,
        "ticket_view.create",
        "ticket_view",
        view.id,
        {k: {"before": None, "after": v} for k, v in after.items()},
    )
    return view


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict(STALE) from exc


def update_view(session: Session, viewer: Viewer, view_id: int, data: ViewUpdate) -> TicketView:
    view = get_view(session, viewer, view_id, for_update=True)
    if not may_edit(viewer, view, _unit_path(session, view.unit_id)):
        raise Forbidden()
    if view.version != data.version:
        raise Conflict(STALE, params={"version": view.version})
    fields = data.model_dump(exclude_unset=True)
    before = _audit_fields(view)
    if data.filters is not None:
        _check_filters(session, viewer, data.filters)
        view.filters = data.filters.model_dump(mode="json")
    if "unit_id" in fields and data.unit_id != view.unit_id:
        _check_share(session, viewer, data.unit_id)
        view.unit_id = data.unit_id
    if data.name is not None:
        view.name = data.name
    if data.position is not None:
        view.position = data.position
    view.updated_at = now()
    _flush(session)
    changes = {
        k: {"before": before[k], "after": v}
        for k, v in _audit_fields(view).items()
        if before[k] != v
    }
    record(session, viewer, "ticket_view.update", "ticket_view", view.id, changes)
    return view


def delete_view(session: Session, viewer: Viewer, view_id: int) -> None:
    view = get_view(session, viewer, view_id, for_update=True)
    if not may_edit(viewer, view, _unit_path(session, view.unit_id)):
        raise Forbidden()
    before = _audit_fields(view)
    session.delete(view)
    _flush(session)
    record(
        session,
        viewer,
        "ticket_view.delete",
        "ticket_view",
        view_id,
        {k: {"before": v, "after": None} for k, v in before.items()},
    )
