"""Administrators edit the survey's questions, in Chinese and English."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kefu.errors import Invalid, NotFound
from kefu.i18n import N_
from kefu.surveys import service as surveys
from kefu.surveys.schemas import TemplateUpdate
from kefu.web.common import (
    CurrentMe,
    Db,
    Form,
    PostedForm,
    parse,
    redirect,
    render,
    require_role,
    text,
)

router = APIRouter()
KEY_LABELS = {
    "intro": N_("Introduction"),
    "reliability": N_("Reliability"),
    "responsiveness": N_("Responsiveness"),
    "assurance": N_("Assurance"),
    "empathy": N_("Empathy"),
    "tangibles": N_("Tangibles"),
    "csat": N_("Overall satisfaction (1–5)"),
    "nps": N_("How likely are you to recommend us? (0–10)"),
    "comment": N_("Comment"),
}


def _form(template_id: int, texts: dict[str, dict[str, str]], name: str) -> Form:
    values = {"name": name}
    for key in surveys.TEMPLATE_KEYS:
        for lang in ("zh_CN", "en"):
            values[f"{key}.{lang}"] = texts.get(key, {}).get(lang, "")
    return Form(values, key=f"t{template_id}")


@router.get("/survey-templates")
def templates_page(request: Request, me: CurrentMe, db: Db) -> Response:
    require_role(me, "admin")
    forms = [(t, _form(t.id, t.texts, t.name)) for t in surveys.templates(db)]
    return render(request, "survey/templates.html", {"forms": forms, "KEY_LABELS": KEY_LABELS})


@router.post("/survey-templates/{template_id}")
def save_template(
    template_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    require_role(me, "admin")
    values = {"name": text(form, "name")}
    data: dict[str, object] = {"name": values["name"]}
    for key in surveys.TEMPLATE_KEYS:
        pair = {lang: text(form, f"{key}.{lang}") for lang in ("zh_CN", "en")}
        values.update({f"{key}.{lang}": v for lang, v in pair.items()})
        data[key] = pair
    try:
        with db.begin_nested():
            surveys.update_template(db, me.viewer, template_id, parse(TemplateUpdate, data))
    except Invalid as exc:
        db.expire_all()
        forms = []
        for t in surveys.templates(db):
            f = _form(t.id, t.texts, t.name)
            if t.id == template_id:
                f = Form(values, exc.errors, key=f"t{t.id}")
            forms.append((t, f))
        if not any(t.id == template_id for t, _ in forms):
            raise NotFound() from exc
        return render(
            request,
            "survey/templates.html",
            {"forms": forms, "KEY_LABELS": KEY_LABELS},
            status=422,
        )
    return redirect(request, "/survey-templates", "saved")
