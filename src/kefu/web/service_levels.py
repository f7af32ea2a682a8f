"""Service levels (服务等级) 5A … 1A: what each entitles (service content, the return visit,
SLA targets per priority) and its version history. Administrators edit a level, which makes
a new version; tickets keep the version they were opened under.

Everyone signed in may read these pages (agents need to know what a customer is owed);
the edit form and its POST are for administrators only (others get 404).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from babel.lists import format_list
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from kefu import i18n
from kefu.errors import FieldError, Invalid, NotFound
from kefu.i18n import N_
from kefu.service_levels import service
from kefu.service_levels.models import PRIORITIES, ServiceLevel, ServiceLevelVersion, SlaTarget
from kefu.service_levels.schemas import ServiceLevelUpdate
from kefu.web import charts
from kefu.web.common import (
    CurrentMe,
    Db,
    Form,
    Me,
    PostedForm,
    env,
    parse,
    redirect,
    render,
    require_role,
    text,
    tr,
)
from kefu.web.customers import CONTENT_LABELS, content_label

router = APIRouter()
env.globals.update(charts.TEMPLATE_HELPERS)

PRIORITY_LABELS = {
    "urgent": N_("Urgent"),
    "high": N_("High"),
    "normal": N_("Normal"),
    "low": N_("Low"),
}
# (form key, column, label) of the three targets.
MEASURES = (
    ("first", "first_response_minutes", N_("First response")),
    ("next", "next_response_minutes", N_("Next response")),
    ("resolution", "resolution_minutes", N_("Resolution")),
)
METHOD_LABELS = {
    "phone": N_("Phone call"),
    "onsite": N_("On-site visit"),
    "survey": N_("Survey link"),
}
# Fields of a version, named for the history's "changed: …".
VERSION_FIELDS = {
    "name_zh": N_("Chinese name"),
    "name_en": N_("English name"),
    "description": N_("Description"),
    "content": N_("Service content"),
    "return_visit_hours": N_("Return-visit deadline"),
    "return_visit_method": N_("Return-visit method"),
    "visit_frequency_days": N_("Visit frequency"),
    "is_24x7": N_("7×24 service"),
    "pause_on_hold": N_("SLA paused on hold"),
}
WHOLE_NUMBER = N_("Must be a whole number.")
REQUIRED = N_("This field is required.")
BOOL_CONTENT = ("dedicated_manager", "hotline_24x7", "priority_dispatch", "periodic_review")


def name_of(version: ServiceLevelVersion) -> str:
    return version.name_en if i18n.get_locale() == "en" else version.name_zh


@dataclass
class LevelView:
    code: str
    rank: int
    version: ServiceLevelVersion
    name: str
    entitlements: list[str]
    targets: list[tuple[str, SlaTarget | None]]  # priority → its general target
    by_category: list[SlaTarget]  # targets of one ticket category


def _view(level: ServiceLevel, version: ServiceLevelVersion) -> LevelView:
    general = {t.priority: t for t in version.targets if t.category_code is None}
    return LevelView(
        code=level.code,
        rank=level.rank,
        version=version,
        name=name_of(version),
        entitlements=[x for x in (content_label(i) for i in version.content) if x],
        targets=[(p, general.get(p)) for p in PRIORITIES],
        by_category=[t for t in version.targets if t.category_code is not None],
    )


def _common() -> dict[str, Any]:
    return {
        "priority_labels": PRIORITY_LABELS,
        "measures": MEASURES,
        "method_labels": METHOD_LABELS,
    }


@router.get("/service-levels")
def list_levels(request: Request, me: CurrentMe, db: Db) -> Response:
    levels = [_view(lv, lv.current) for lv in service.list_levels(db) if lv.current]
    return render(request, "service_levels/list.html", {"levels": levels, **_common()})


# --- one level: details, history, the edit form ------------------------------------------------


def _changes(newer: ServiceLevelVersion, older: ServiceLevelVersion | None) -> str:
    """What a version changed compared with the one before it, readable."""
    if older is None:
        return ""
    names = [
        tr(label) for f, label in VERSION_FIELDS.items() if getattr(newer, f) != getattr(older, f)
    ]

    def dump(v: ServiceLevelVersion) -> list[tuple[Any, ...]]:
        return sorted(
            (
                t.priority,
                t.category_code or "",
                t.first_response_minutes,
                t.next_response_minutes,
                t.resolution_minutes,
            )
            for t in v.targets
        )

    if dump(newer) != dump(older):
        names.append(tr(N_("SLA targets")))
    return format_list(names, locale=i18n.get_locale()) if names else tr(N_("nothing"))


def _version_values(v: ServiceLevelVersion) -> dict[str, Any]:
    content = {str(i.get("key")): i.get("value") for i in v.content}
    values: dict[str, Any] = {
        "name_zh": v.name_zh,
        "name_en": v.name_en,
        "description": v.description,
        "return_visit_hours": v.return_visit_hours,
        "return_visit_method": v.return_visit_method,
        "visit_frequency_days": v.visit_frequency_days or "",
        "is_24x7": v.is_24x7,
        "pause_on_hold": v.pause_on_hold,
        "onsite_response_hours": content.get("onsite_response_hours") or "",
        "targets": None,  # errors about the table as a whole
    }
    values.update({f"c_{k}": bool(content.get(k)) for k in BOOL_CONTENT})
    general = {t.priority: t for t in v.targets if t.category_code is None}
    for p in PRIORITIES:
        values[f"t_{p}"] = None  # errors about one row
        for key, column, _ in MEASURES:
            minutes = getattr(general[p], column) if p in general else None
            values[f"t_{p}_{key}"] = None
            values[f"t_{p}_{key}_h"] = "" if minutes is None else minutes // 60
            values[f"t_{p}_{key}_m"] = "" if minutes is None else minutes % 60
    return values


def _detail(
    request: Request,
    db: Session,
    me: Me,
    code: str,
    *,
    form: Form | None = None,
    status: int = 200,
) -> Response:
    level = service.get_level(db, code)  # unknown: 404
    assert level.current is not None
    versions = service.versions(db, code)
    wanted = request.query_params.get("version", "")
    shown = next((v for v in versions if str(v.version) == wanted), level.current)
    history = [
        (v, _changes(v, versions[i + 1] if i + 1 < len(versions) else None))
        for i, v in enumerate(versions)
    ]
    return render(
        request,
        "service_levels/detail.html",
        {
            "level": _view(level, shown),
            "current": level.current,
            "history": history,
            "can_edit": me.viewer.is_admin,
            "form": form or Form(_version_values(level.current), key="sl"),
            "priorities": PRIORITIES,
            "method_options": [(k, tr(v)) for k, v in METHOD_LABELS.items()],
            "content_labels": CONTENT_LABELS,
            **_common(),
        },
        status=status,
    )


@router.get("/service-levels/{code}")
def level_page(code: str, request: Request, me: CurrentMe, db: Db) -> Response:
    return _detail(request, db, me, code)


def _form_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {
        f: text(form, f)
        for f in (
            "name_zh",
            "name_en",
            "description",
            "return_visit_hours",
            "return_visit_method",
            "visit_frequency_days",
            "onsite_response_hours",
        )
    }
    values.update({f: text(form, f) == "1" for f in ("is_24x7", "pause_on_hold")})
    values.update({f"c_{k}": text(form, f"c_{k}") == "1" for k in BOOL_CONTENT})
    values["targets"] = None
    for p in PRIORITIES:
        values[f"t_{p}"] = None
        for key, _, _ in MEASURES:
            values[f"t_{p}_{key}"] = None
            for part in ("h", "m"):
                values[f"t_{p}_{key}_{part}"] = text(form, f"t_{p}_{key}_{part}").strip()
    return values


def _whole(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() else None


def _update(values: dict[str, Any], old: ServiceLevelVersion) -> ServiceLevelUpdate:
    """The form as a ServiceLevelUpdate; errors named by the form's own fields."""
    errors: list[FieldError] = []
    targets: list[dict[str, Any]] = []
    for p in PRIORITIES:
        row: dict[str, Any] = {"priority": p}
        for key, column, _ in MEASURES:
            h, m = values[f"t_{p}_{key}_h"], values[f"t_{p}_{key}_m"]
            if (h and _whole(h) is None) or (m and _whole(m) is None):
                errors.append(FieldError(f"t_{p}_{key}", WHOLE_NUMBER))
                continue
            row[column] = (_whole(h) or 0) * 60 + (_whole(m) or 0)
        targets.append(row)
    # Targets of one ticket category are not in the grid: they stay as they are.
    targets += [
        {
            "priority": t.priority,
            "category_code": t.category_code,
            "first_response_minutes": t.first_response_minutes,
            "next_response_minutes": t.next_response_minutes,
            "resolution_minutes": t.resolution_minutes,
        }
        for t in old.targets
        if t.category_code is not None
    ]
    if not values["return_visit_hours"].strip():  # empty would keep the old deadline silently
        errors.append(FieldError("return_visit_hours", REQUIRED))
    onsite = values["onsite_response_hours"].strip()
    if onsite and _whole(onsite) is None:
        errors.append(FieldError("onsite_response_hours", WHOLE_NUMBER))
    if errors:
        raise Invalid(errors=errors)
    # Service content: the items the level had, in their order, then any newly granted.
    wanted: dict[str, Any] = {k: values[f"c_{k}"] for k in BOOL_CONTENT}
    wanted["onsite_response_hours"] = _whole(onsite) if onsite else None
    wanted["visit_frequency_days"] = _whole(values["visit_frequency_days"])
    keys = [str(i.get("key")) for i in old.content if i.get("key") in wanted]
    keys += [k for k in CONTENT_LABELS if k not in keys and wanted.get(k)]
    content = [{"key": k, "value": wanted[k]} for k in keys]
    data = {
        "name_zh": values["name_zh"],
        "name_en": values["name_en"],
        "description": values["description"],
        "content": content,
        "return_visit_hours": values["return_visit_hours"] or None,
        "return_visit_method": values["return_visit_method"],
        "visit_frequency_days": values["visit_frequency_days"].strip() or None,
        "is_24x7": values["is_24x7"],
        "pause_on_hold": values["pause_on_hold"],
        "targets": targets,
    }
    try:
        return parse(ServiceLevelUpdate, data)
    except Invalid as exc:
        raise Invalid(errors=[_named(e, keys) for e in exc.errors]) from exc


def _named(error: FieldError, content_keys: list[str]) -> FieldError:
    """'targets.1.resolution_minutes' → 't_high_resolution'; 'targets.1' → 't_high';
    'content.0.value' → that item's field."""
    parts = error.field.split(".")
    name = error.field
    if parts[0] == "targets" and len(parts) > 1 and parts[1].isdigit():
        i = int(parts[1])
        if i < len(PRIORITIES):
            name = f"t_{PRIORITIES[i]}"
            column = parts[2] if len(parts) > 2 else ""
            key = next((k for k, c, _ in MEASURES if c == column), None)
            if key:
                name += f"_{key}"
        else:
            name = "targets"
    elif parts[0] == "content" and len(parts) > 1 and parts[1].isdigit():
        i = int(parts[1])
        key = content_keys[i] if i < len(content_keys) else ""
        name = f"c_{key}" if key in BOOL_CONTENT else key or "content"
    return FieldError(name, error.message, error.params)


@router.post("/service-levels/{code}")
def edit_level(code: str, request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    require_role(me, "admin")  # others learn nothing
    level = service.get_level(db, code)  # unknown: 404
    if level.current is None:  # pragma: no cover (get_level refuses it)
        raise NotFound()
    values = _form_values(form)
    try:
        with db.begin_nested():  # on error nothing of it stays
            service.update_level(db, me.viewer, code, _update(values, level.current))
    except Invalid as exc:
        db.expire_all()
        return _detail(request, db, me, code, form=Form(values, exc.errors, key="sl"), status=422)
    return redirect(request, f"/service-levels/{code}", "saved")
