"""The one visibility mechanism: who sees which rows.

Every list, detail, search, export and count of a scoped model goes through `visible()`
or `get_visible()`. A model is scoped by a classmethod `__scope__(viewer)` returning a SQL
condition built from the helpers here. Staff see what their unit's subtree owns plus what
they are assigned to; admins see everything; an id outside the scope is NotFound (404), so
existence never leaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, false, func, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from kefu.errors import NotFound

ROLES = ("agent", "supervisor", "manager", "admin")


@dataclass(frozen=True)
class Viewer:
    """Who is asking: enough to scope queries and to sign the audit log."""

    staff_id: int | None
    username: str
    unit_id: int | None
    unit_path: str | None
    roles: frozenset[str] = field(default_factory=frozenset)
    channel: str = "api"  # api | web | cli | worker | portal
    request_id: str | None = None
    remote_addr: str | None = None
    locale: str = "zh_CN"
    # A customer's contact signed in to the portal (staff_id is then None): their customer,
    # its tree path, and whether they administer the group (see its branches too).
    contact_id: int | None = None
    customer_id: int | None = None
    customer_path: str | None = None
    group_admin: bool = False

    @property
    def is_contact(self) -> bool:
        return self.contact_id is not None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def has_role(self, *roles: str) -> bool:
        return self.is_admin or bool(self.roles.intersection(roles))


SYSTEM = Viewer(
    staff_id=None,
    username="system",
    unit_id=None,
    unit_path=None,
    roles=frozenset({"admin"}),
    channel="cli",
)


def subtree_bounds(path: str) -> tuple[str, str]:
    """[low, high) of every path in the subtree of `path` ('/1/5/' → '/1/5/', '/1/50')."""
    return path, path[:-1] + chr(ord(path[-1]) + 1)


def path_in_subtree(path_col: Any, path: str) -> ColumnElement[bool]:
    low, high = subtree_bounds(path)
    return (path_col >= low) & (path_col < high)


def in_subtree(path_col: Any, viewer: Viewer) -> ColumnElement[bool]:
    """Rows whose own unit path lies in the viewer's subtree (for the units table itself)."""
    if viewer.unit_path is None:
        return false()
    return path_in_subtree(path_col, viewer.unit_path)


def subtree_unit_ids(viewer: Viewer) -> Select[Any]:
    from kefu.units.models import Unit  # the tree lives in units; scope only reads it

    return select(Unit.id).where(in_subtree(Unit.path, viewer))


def owned_by_subtree(unit_id_col: Any, viewer: Viewer) -> ColumnElement[bool]:
    """Rows owned by a unit of the viewer's subtree."""
    if viewer.unit_path is None:
        return false()
    return unit_id_col.in_(subtree_unit_ids(viewer))


def of_contact(customer_id_col: Any, viewer: Viewer) -> ColumnElement[bool]:
    """Rows of the signed-in contact's customer; for a group administrator, also of the
    customers below it (the branches). Nothing for anyone who is not a contact."""
    if viewer.contact_id is None or viewer.customer_id is None:
        return false()
    if viewer.group_admin and viewer.customer_path:
        from kefu.customers.models import Customer  # the group tree lives in customers

        below = select(Customer.id).where(path_in_subtree(Customer.path, viewer.customer_path))
        return customer_id_col.in_(below)
    return customer_id_col == viewer.customer_id


class Scoped(Protocol):
    @classmethod
    def __scope__(cls, viewer: Viewer) -> ColumnElement[bool]: ...


M = TypeVar("M")


def condition(model: Any, viewer: Viewer) -> ColumnElement[bool]:
    if viewer.is_admin:
        return true()
    return model.__scope__(viewer)


def visible(stmt: Select[Any], model: Any, viewer: Viewer) -> Select[Any]:
    """`stmt` restricted to the rows of `model` the viewer may see."""
    return stmt if viewer.is_admin else stmt.where(model.__scope__(viewer))


def get_visible(
    session: Session,
    model: type[M],
    id_: Any,
    viewer: Viewer,
    options: tuple[Any, ...] = (),
    for_update: bool = False,
) -> M:
    """The row `id_` of `model` if the viewer may see it, else NotFound."""
    stmt = visible(select(model).where(model.id == id_), model, viewer)  # type: ignore[attr-defined]
    if options:
        stmt = stmt.options(*options)
    if for_update:
        stmt = stmt.with_for_update()
    obj = session.scalars(stmt).first()
    if obj is None:
        raise NotFound(params={"id": id_})
    return obj


def count_visible(session: Session, model: Any, viewer: Viewer, *where: ColumnElement[bool]) -> int:
    stmt = visible(select(func.count()).select_from(model), model, viewer).where(*where)
    return int(session.scalar(stmt) or 0)
