"""The unit tree: browse (children load as HTMX fragments), create, edit, move."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from kefu.config import get_settings
from kefu.errors import Invalid
from kefu.units import queries
from kefu.units import service as units
from kefu.units.models import FUNCTIONS, Unit
from kefu.units.schemas import UnitCreate, UnitUpdate
from kefu.web.common import (
    FUNCTION_LABELS,
    CurrentMe,
    Db,
    Form,
    Me,
    PostedForm,
    all_rows,
    optional,
    parse,
    redirect,
    render,
    text,
)

router = APIRouter()

TIMEZONES = ("Asia/Shanghai", "Asia/Urumqi", "Asia/Hong_Kong", "Asia/Macau", "Asia/Taipei", "UTC")
FUNCTION_OPTIONS = [(f, FUNCTION_LABELS[f]) for f in FUNCTIONS]


@dataclass
class Node:
    unit: Unit
    children: list[Node] | None = None  # None: not loaded yet (HTMX loads them)
    leaf: bool = False


@dataclass
class Choice:
    unit: Unit
    depth: int
    disabled: bool = False


def _order(u: Unit) -> tuple[int, int]:
    return (u.sort_order, u.id)


class Tree:
    """The units a viewer sees, arranged as a tree (their top is wherever their view starts)."""

    def __init__(self, visible: list[Unit]) -> None:
        self.by_id = {u.id: u for u in visible}
        self.kids: dict[int | None, list[Unit]] = defaultdict(list)
        for u in visible:
            self.kids[u.parent_id if u.parent_id in self.by_id else None].append(u)
        for siblings in self.kids.values():
            siblings.sort(key=_order)

    def nodes(self, open_ids: set[int], parent: int | None = None) -> list[Node]:
        out = []
        for u in self.kids.get(parent, []):
            leaf = not self.kids.get(u.id)
            kids = self.nodes(open_ids, u.id) if u.id in open_ids and not leaf else None
            out.append(Node(u, kids, leaf))
        return out

    def ancestors(self, unit: Unit) -> list[Unit]:
        """The visible units above `unit`, top first."""
        chain = []
        pid = unit.parent_id
        while pid in self.by_id:
            chain.append(self.by_id[pid])
            pid = self.by_id[pid].parent_id
        return chain[::-1]

    def choices(self, exclude_path: str | None = None, active_only: bool = False) -> list[Choice]:
        """Every unit in tree order, for a select; `exclude_path`'s subtree is disabled."""
        out: list[Choice] = []

        def walk(parent: int | None, depth: int) -> None:
            for u in self.kids.get(parent, []):
                off = (exclude_path is not None and u.path.startswith(exclude_path)) or (
                    active_only and not u.is_active
                )
                out.append(Choice(u, depth, off))
                walk(u.id, depth + 1)

        walk(None, 0)
        return out


def visible_tree(db: Session, me: Me) -> Tree:
    return Tree(all_rows(db, queries.units(me.viewer), key=Unit.path))


def _unit_form(unit: Unit, key: str) -> Form:
    return Form(
        {
            "name": unit.name,
            "region_code": unit.region_code,
            "timezone": unit.timezone,
            "functions": unit.function_names,
        },
        key=key,
    )


def _blank_child_form() -> Form:
    return Form(
        {"name": "", "region_code": "", "timezone": "", "functions": ["service"]}, key="add"
    )


def _page(
    request: Request,
    db: Session,
    me: Me,
    unit_id: int | None,
    *,
    status: int = 200,
    **forms: Form,
) -> Response:
    """The tree with `unit_id` open and selected, its details, and (admins) its forms."""
    unit = units.get_unit(db, me.viewer, unit_id) if unit_id is not None else None
    tree = visible_tree(db, me)
    ancestors = tree.ancestors(unit) if unit else []
    open_ids = {a.id for a in ancestors} | ({unit.id} if unit else {u.id for u in tree.kids[None]})
    ctx: dict[str, Any] = {
        "unit": unit,
        "ancestors": ancestors,
        "roots": tree.nodes(open_ids),
        "selected_id": unit.id if unit else None,
        "functions": FUNCTION_OPTIONS,
        "timezones": TIMEZONES,
        "default_timezone": get_settings().default_timezone,
        "child_form": forms.get("child_form") or _blank_child_form(),
    }
    if unit is not None:
        ctx["edit_form"] = forms.get("edit_form") or _unit_form(unit, "edit")
        ctx["move_form"] = forms.get("move_form") or Form({"parent_id": unit.parent_id}, key="move")
        ctx["move_choices"] = tree.choices(exclude_path=unit.path)
    return render(request, "units/page.html", ctx, status=status)


@router.get("/units")
def tree_page(request: Request, me: CurrentMe, db: Db) -> Response:
    return _page(request, db, me, None)


@router.get("/units/{unit_id}")
def unit_page(unit_id: int, request: Request, me: CurrentMe, db: Db) -> Response:
    return _page(request, db, me, unit_id)


@router.get("/units/{unit_id}/children")
def children(unit_id: int, request: Request, me: CurrentMe, db: Db) -> Response:
    parent = units.get_unit(db, me.viewer, unit_id)  # out of scope: 404
    # The subtree, not just the children: then each child knows whether it has any below.
    below = Tree(all_rows(db, queries.units(me.viewer, under=parent.path), key=Unit.path))
    return render(
        request,
        "units/children.html",
        {"parent": parent, "nodes": below.nodes(set(), parent.id), "selected_id": None},
        fragment="children",
    )


def _fields(form: FormData) -> dict[str, Any]:
    return {
        "name": text(form, "name"),
        "region_code": text(form, "region_code"),
        "timezone": text(form, "timezone"),
        "functions": form.getlist("functions"),
    }


@router.post("/units")
def create_unit(request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    parent_id = optional(text(form, "parent_id"))
    values = _fields(form)
    try:
        with db.begin_nested():  # on error nothing of it stays
            data = parse(
                UnitCreate,
                {**values, "parent_id": parent_id, "timezone": optional(values["timezone"])},
            )
            unit = units.create_unit(db, me.viewer, data)
    except Invalid as exc:
        db.expire_all()
        child_form = Form(values, exc.errors, key="add")
        # Back to the parent's page, unless the parent itself is what is wrong.
        bad_parent = any(e.field == "parent_id" for e in exc.errors)
        back = int(parent_id) if parent_id and parent_id.isdigit() and not bad_parent else None
        return _page(request, db, me, back, status=422, child_form=child_form)
    return redirect(request, f"/units/{unit.id}", "created")


@router.post("/units/{unit_id}")
def edit_unit(unit_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    values = _fields(form)
    try:
        with db.begin_nested():
            units.update_unit(db, me.viewer, unit_id, parse(UnitUpdate, values))
    except Invalid as exc:
        db.expire_all()
        edit_form = Form(values, exc.errors, key="edit")
        return _page(request, db, me, unit_id, status=422, edit_form=edit_form)
    return redirect(request, f"/units/{unit_id}", "saved")


@router.post("/units/{unit_id}/move")
def move_unit(unit_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    values = {"parent_id": optional(text(form, "parent_id"))}
    try:
        with db.begin_nested():
            units.update_unit(db, me.viewer, unit_id, parse(UnitUpdate, values))
    except Invalid as exc:
        db.expire_all()
        move_form = Form(values, exc.errors, key="move")
        return _page(request, db, me, unit_id, status=422, move_form=move_form)
    return redirect(request, f"/units/{unit_id}", "moved")
