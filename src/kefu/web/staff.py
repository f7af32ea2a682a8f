"""Staff: the filtered list, create, edit, deactivate/reactivate, password reset."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from kefu.errors import FieldError, Forbidden, Invalid
from kefu.i18n import N_
from kefu.pagination import paginate
from kefu.scope import ROLES
from kefu.staff import queries
from kefu.staff import service as staff_service
from kefu.staff.models import Staff
from kefu.staff.schemas import StaffCreate, StaffUpdate
from kefu.web.common import (
    LANGUAGES,
    ROLE_LABELS,
    CurrentMe,
    Db,
    Form,
    Me,
    PostedForm,
    optional,
    parse,
    redirect,
    render,
    text,
    url_with,
)
from kefu.web.units import visible_tree

router = APIRouter()

PAGE_SIZE = 50
ACTIVE_OPTIONS = [("1", N_("Active")), ("0", N_("Inactive"))]
NO_PERMISSION = N_("Only managers and administrators may manage staff.")
PASSWORDS_DIFFER = N_("The two passwords differ.")


def _role_options(me: Me) -> list[tuple[str, str]]:
    # Only administrators may grant the admin role, so only they are offered it.
    return [(r, ROLE_LABELS[r]) for r in ROLES if r != "admin" or me.viewer.is_admin]


def _int_or_none(value: str) -> int | None:
    return int(value) if value.strip().isdigit() else None


@router.get("/staff")
def list_staff(
    request: Request,
    me: CurrentMe,
    db: Db,
    q: str = "",
    unit_id: str = "",
    role: str = "",
    active: str = "",
    cursor: str | None = None,
) -> Response:
    q = q.strip()[:100]
    filters = Form({"q": q, "unit_id": unit_id, "role": role, "active": active}, key="filter")
    stmt = queries.staff(
        db,
        me.viewer,
        unit_id=_int_or_none(unit_id),
        role=role if role in ROLES else None,
        q=q or None,
        active={"1": True, "0": False}.get(active),
    )
    page = paginate(db, stmt, key=Staff.id, limit=PAGE_SIZE, cursor=cursor or None)
    tree = visible_tree(db, me)
    return render(
        request,
        "staff/list.html",
        {
            "filters": filters,
            "people": page.items,
            "units_by_id": tree.by_id,
            "unit_choices": tree.choices(),
            "role_options": [(r, ROLE_LABELS[r]) for r in ROLES],
            "active_options": ACTIVE_OPTIONS,
            "next_url": url_with(request, cursor=page.next_cursor) if page.next_cursor else None,
            "first_url": url_with(request, cursor=None) if cursor else None,
            "can_manage": me.viewer.has_role("manager"),
        },
    )


def _new_page(request: Request, db: Session, me: Me, form: Form, status: int = 200) -> Response:
    tree = visible_tree(db, me)
    return render(
        request,
        "staff/new.html",
        {
            "form": form,
            "unit_choices": tree.choices(active_only=True),
            "role_options": _role_options(me),
            "languages": LANGUAGES,
        },
        status=status,
    )


@router.get("/staff/new")
def new_staff(request: Request, me: CurrentMe, db: Db) -> Response:
    if not me.viewer.has_role("manager"):
        raise Forbidden(NO_PERMISSION)
    blank = {
        "username": "",
        "display_name": "",
        "unit_id": request.query_params.get("unit_id") or me.unit_id,
        "roles": ["agent"],
        "email": "",
        "phone": "",
        "locale": "zh_CN",
        "password": "",
    }
    return _new_page(request, db, me, Form(blank))


@router.post("/staff")
def create_staff(request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    values: dict[str, Any] = {
        "username": text(form, "username"),
        "display_name": text(form, "display_name"),
        "unit_id": text(form, "unit_id"),
        "roles": form.getlist("roles"),
        "email": text(form, "email"),
        "phone": text(form, "phone"),
        "locale": text(form, "locale") or "zh_CN",
        "password": text(form, "password"),
    }
    data = {
        **values,
        **{k: optional(values[k]) for k in ("email", "phone", "password", "unit_id")},
    }
    try:
        with db.begin_nested():  # on error nothing of it stays
            staff = staff_service.create_staff(db, me.viewer, parse(StaffCreate, data))
    except Invalid as exc:
        db.expire_all()
        return _new_page(request, db, me, Form({**values, "password": ""}, exc.errors), 422)
    return redirect(request, f"/staff/{staff.id}", "created")


def _detail_page(
    request: Request,
    db: Session,
    me: Me,
    staff_id: int,
    *,
    status: int = 200,
    edit_form: Form | None = None,
    password_form: Form | None = None,
    active_form: Form | None = None,
) -> Response:
    person = staff_service.get_staff(db, me.viewer, staff_id)  # out of scope: 404
    tree = visible_tree(db, me)
    is_self = person.id == me.id
    # The service decides; these flags only choose which forms are worth showing.
    manages = me.viewer.has_role("manager") and (me.viewer.is_admin or "admin" not in person.roles)
    unit = tree.by_id.get(person.unit_id)
    edit_form = edit_form or Form(
        {
            "display_name": person.display_name,
            "email": person.email,
            "phone": person.phone,
            "locale": person.locale,
            **({"unit_id": person.unit_id, "roles": person.roles} if manages else {}),
        },
        key="edit",
    )
    return render(
        request,
        "staff/detail.html",
        {
            "person": person,
            "unit": unit,
            "tz": unit.timezone if unit else me.tz,
            "is_self": is_self,
            "manages": manages,
            "edit_form": edit_form,
            "password_form": password_form or Form({"password": "", "confirm": ""}, key="pw"),
            "active_form": active_form or Form({}, key="active"),
            "unit_choices": tree.choices(active_only=True),
            "role_options": _role_options(me),
            "languages": LANGUAGES,
        },
        status=status,
    )


@router.get("/staff/{staff_id}")
def staff_page(staff_id: int, request: Request, me: CurrentMe, db: Db) -> Response:
    return _detail_page(request, db, me, staff_id)


@router.post("/staff/{staff_id}")
def edit_staff(
    staff_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    values: dict[str, Any] = {
        "display_name": text(form, "display_name"),
        "email": text(form, "email"),
        "phone": text(form, "phone"),
        "locale": text(form, "locale"),
    }
    if "unit_id" in form:
        values["unit_id"] = text(form, "unit_id")
    if "roles" in form or "unit_id" in form:  # the manager's form always carries both
        values["roles"] = form.getlist("roles")
    try:
        with db.begin_nested():
            person = staff_service.get_staff(db, me.viewer, staff_id)
            data = {
                **values,
                "email": optional(values["email"]),
                "phone": optional(values["phone"]),
            }
            # Send only what changed, so people may edit their own profile without the
            # rights needed to move or re-role someone.
            if "unit_id" in data and str(person.unit_id) == data["unit_id"]:
                del data["unit_id"]
            if "roles" in data and sorted(person.roles) == sorted(data["roles"]):
                del data["roles"]
            staff_service.update_staff(db, me.viewer, staff_id, parse(StaffUpdate, data))
    except Invalid as exc:
        db.expire_all()
        edit_form = Form(values, exc.errors, key="edit")
        return _detail_page(request, db, me, staff_id, status=422, edit_form=edit_form)
    return redirect(request, f"/staff/{staff_id}", "saved")


@router.post("/staff/{staff_id}/active")
def set_active(
    staff_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    active = text(form, "active") == "1"
    try:
        with db.begin_nested():
            staff_service.update_staff(db, me.viewer, staff_id, StaffUpdate(is_active=active))
    except Invalid as exc:
        db.expire_all()
        errors = [FieldError("", e.message, e.params) for e in exc.errors]
        return _detail_page(
            request, db, me, staff_id, status=422, active_form=Form({}, errors, key="active")
        )
    return redirect(request, f"/staff/{staff_id}", "reactivated" if active else "deactivated")


@router.post("/staff/{staff_id}/password")
def set_password(
    staff_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    password, confirm = text(form, "password"), text(form, "confirm")
    try:
        with db.begin_nested():
            data = parse(StaffUpdate, {"password": password})
            if password != confirm:
                raise Invalid.field("confirm", PASSWORDS_DIFFER)
            staff_service.update_staff(db, me.viewer, staff_id, data)
    except Invalid as exc:
        db.expire_all()
        pw_form = Form({"password": "", "confirm": ""}, exc.errors, key="pw")
        return _detail_page(request, db, me, staff_id, status=422, password_form=pw_form)
    return redirect(request, f"/staff/{staff_id}", "password")
