"""The public survey page a customer opens from a link: no sign-in, works on a phone,
in the contact's language (the language switch still wins). The token is the only key;
wrong tokens count against the address like failed sign-ins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from kefu.errors import Invalid
from kefu.surveys import service as surveys
from kefu.surveys.schemas import AnswerIn
from kefu.web.common import Db, form_data, parse, render, request_context, verify_csrf
from kefu.web.visits import LABELS, answer_data, blank_answer_form, form_errors

router = APIRouter()


def _locale(request: Request, opened: surveys.Opened) -> None:
    chosen = getattr(request.state, "cookie_locale", None)
    if opened.invitation is not None:
        request.state.locale = chosen or opened.invitation.locale


def _refused(request: Request, opened: surveys.Opened) -> Response:
    return render(
        request,
        "survey/done.html",
        {"error": opened.error, "status": opened.status, **LABELS},
        status=opened.status,
    )


@router.get("/s/{token}")
def survey_page(token: str, request: Request, db: Db) -> Response:
    opened = surveys.open_link(db, token, request_context(request)["remote_addr"] or "")
    if opened.invitation is None:
        return _refused(request, opened)  # the failed attempt commits with the page
    _locale(request, opened)
    return _page(request, opened, blank_answer_form())


def _page(request: Request, opened: surveys.Opened, form: object, status: int = 200) -> Response:
    template = opened.template
    texts = template.texts if template else {}
    locale = getattr(request.state, "locale", None) or "zh_CN"
    ctx = {
        "opened": opened,
        "texts": {k: (v.get(locale) or v.get("zh_CN") or "") for k, v in texts.items()},
        "form": form,
        **LABELS,
    }
    return render(request, "survey/public.html", ctx, status=status)


@router.post("/s/{token}")
def submit(
    token: str, request: Request, db: Db, form: Annotated[FormData, Depends(form_data)]
) -> Response:
    verify_csrf(request, form, None)
    remote = request_context(request)["remote_addr"] or ""
    data, values = answer_data(form)
    try:
        with db.begin_nested():
            answer = parse(AnswerIn, data)
            opened = surveys.submit_link(db, token, answer, remote)
    except Invalid as exc:
        db.expire_all()
        opened = surveys.open_link(db, token, remote)
        if opened.invitation is None:
            return _refused(request, opened)
        _locale(request, opened)
        return _page(request, opened, blank_answer_form(values, form_errors(exc)), status=422)
    if opened.answer is None:
        return _refused(request, opened)
    _locale(request, opened)
    return render(request, "survey/done.html", {"error": None, "status": 201, **LABELS})
