"""The one visibility mechanism: who sees which rows.

Every list, detail, search, export and count of a scoped model goes through `visible()`
or `get_visible()`. A model is scoped by a classmethod `__scope__(viewer)` returning a SQL
condition built from the helpers here. Staff see what their unit's subtree owns plus what
they are assigned to; admins see everything; an id outside the scope is NotFound (404), so
existence never leaks.

A model whose lists grow large also declares its scope as parts, `__scope_parts__(viewer)`
(see `page_candidates`): `__scope__` is then `any_part(viewer, *parts)`, and a keyset page of a
list made by `visible()` reads each part through its own index instead of one OR that no
index can serve.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, false, func, or_, select, true, union
from sqlalchemy.orm import Session
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ColumnElement

from kefu.db import is_postgres
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
    """`stmt` restricted to the rows of `model` the viewer may see.

    For a model with `__scope_parts__`, the statement also carries a mark (an execution
    option) that `paginate()` reads to fetch a page part by part (`page_candidates`). A
    statement scoped twice (two models) is read plainly: the mark is dropped."""
    if viewer.is_admin:
        return stmt
    cond = model.__scope__(viewer)
    scoped_before = SCOPE_OPTION in stmt.get_execution_options()
    mark = None
    if hasattr(model, "__scope_parts__") and not scoped_before:
        mark = _ScopeMark(model, viewer, cond)
    return stmt.where(cond).execution_options(**{SCOPE_OPTION: mark})


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


# --- large scoped lists: a page read part by part of the scope ------------------------------

SCOPE_OPTION = "kefu_scope"


@dataclass(frozen=True)
class OwnedBySubtree:
    """A scope part: rows whose `column` holds a unit of the viewer's subtree."""

    column: Any


ScopePart = OwnedBySubtree | ColumnElement[bool]


def any_part(viewer: Viewer, *parts: ScopePart) -> ColumnElement[bool]:
    """The scope condition of a model declared by parts: a row is visible when one holds."""
    return or_(
        *[owned_by_subtree(p.column, viewer) if isinstance(p, OwnedBySubtree) else p for p in parts]
    )


@dataclass(frozen=True, eq=False)
class _ScopeMark:
    model: Any
    viewer: Viewer
    condition: ColumnElement[bool]  # the very clause visible() added to the statement


def page_candidates(
    session: Session,
    stmt: Select[Any],
    cols: list[Any],
    *,
    descending: bool,
    n: int,
) -> ColumnElement[bool] | None:
    """`id IN (<the ids of the first n rows>)`, in the order of `cols`, of a list that
    `visible()` made for a model declaring `__scope_parts__`; None for any other statement.

    The scope "owned by a unit of my subtree OR assigned to me" is an OR no index can serve
    in sort order: the database reads every visible row and sorts them (250 ms for a county
    of a million customers). Read part by part instead, each part stops after `n` rows:

    - `OwnedBySubtree(col)`: on PostgreSQL, for each unit of the viewer's subtree, a LATERAL
      subquery `col = unit AND <the list's filters and cursor> ORDER BY <key> LIMIT n`,
      which an index `(col, <equality filters>…, <key columns>…)` answers by reading n
      entries (forwards or backwards); on SQLite (no LATERAL) one subquery `col IN
      (<subtree>)`;
    - any other part (a condition such as `assignee_id = me`): one such subquery.

    The union (duplicates removed: parts may overlap) holds at most units × n + parts × n
    rows; its first n in key order are the candidates. The caller keeps the statement's full
    condition, visibility included, and adds this one: it may only narrow a page to its
    candidates, never widen what a viewer sees.
    """
    mark = stmt.get_execution_options().get(SCOPE_OPTION)
    if not isinstance(mark, _ScopeMark):
        return None
    model, viewer = mark.model, mark.viewer
    if stmt.column_descriptions[0].get("entity") is not model:
        return None  # a list of something else, scoped through this model: read plainly
    # The list's own filters: the statement without its scope clause.
    unscoped: Select[Any] = visitors.replacement_traverse(  # type: ignore[call-overload]
        stmt, {}, lambda el: true() if el is mark.condition else None
    )
    base = unscoped.with_only_columns(
        model.id.label("id"), *[c.label(f"k{i}") for i, c in enumerate(cols)]
    )
    order = [c.desc() if descending else c.asc() for c in cols]
    arms: list[Select[Any]] = []
    for part in model.__scope_parts__(viewer):
        if isinstance(part, OwnedBySubtree):
            if viewer.unit_path is None:
                continue
            units = subtree_unit_ids(viewer)
            if is_postgres(session):
                su = units.subquery()
                per_unit = base.where(part.column == su.c.id).order_by(*order).limit(n).lateral()
                arms.append(select(*per_unit.c).select_from(su).join(per_unit, true()))
                continue
            cond: ColumnElement[bool] = part.column.in_(units)
        else:
            cond = part
        arms.append(select(*base.where(cond).order_by(*order).limit(n).subquery().c))
    if not arms:
        return false()
    top = (union(*arms) if len(arms) > 1 else arms[0]).subquery()
    keys = [top.c[f"k{i}"] for i in range(len(cols))]
    first = select(top.c.id).order_by(*[k.desc() if descending else k for k in keys]).limit(n)
    return model.id.in_(first)
