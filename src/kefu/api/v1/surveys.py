"""Surveys: invitations (staff), the public survey under /surveys/{token} (no sign-in),
answers, and service recovery tasks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from kefu.api.v1.common import Cursor, IdempotencyKey, Limit, PageOut, idempotent_create
from kefu.api.v1.deps import CurrentViewer, Db, request_context
from kefu.api.v1.problems import problem
from kefu.errors import HTTP_TITLES
from kefu.pagination import paginate
from kefu.scope import get_visible
from kefu.surveys import queries
from kefu.surveys import service as surveys
from kefu.surveys.models import DIMENSIONS, RecoveryTask, SurveyAnswer
from kefu.surveys.schemas import (
    AnswerIn,
    AnswerOut,
    InvitationIn,
    InvitationOut,
    RecoveryDoneIn,
    RecoveryOut,
    TemplateOut,
    TemplateUpdate,
)
from kefu.units import service as units

router = APIRouter(prefix="/surveys", tags=["surveys"])
recovery_router = APIRouter(prefix="/recovery-tasks", tags=["surveys"])


def survey_url(request: Request, token: str) -> str:
    """The link a customer opens: the web page, beside the API."""
    return str(request.base_url).rstrip("/").removesuffix("/api/v1") + f"/s/{token}"


@router.post(
    "/invitations",
    status_code=201,
    response_model=InvitationOut,
    summary="A survey link for a resolved ticket or a return visit (signed, expiring, single-use)",
)
def create_invitation(
    body: InvitationIn,
    request: Request,
    viewer: CurrentViewer,
    db: Db,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create() -> tuple[InvitationOut, str]:
        invitation, token = surveys.invite(db, viewer, body)
        out = InvitationOut.model_validate(invitation)
        out.token, out.url = token, survey_url(request, token)
        root = request.scope.get("root_path", "")
        return out, f"{root}/surveys/{token}"

    return idempotent_create(request, db, viewer, idempotency_key, body, create)


@router.get("/templates", response_model=list[TemplateOut], summary="Survey templates")
def list_templates(viewer: CurrentViewer, db: Db) -> list[TemplateOut]:
    return [TemplateOut.model_validate(t) for t in surveys.templates(db)]


@router.patch(
    "/templates/{template_id}",
    response_model=TemplateOut,
    summary="Edit a template's questions in both languages (administrators)",
)
def update_template(
    template_id: int, body: TemplateUpdate, viewer: CurrentViewer, db: Db
) -> TemplateOut:
    return TemplateOut.model_validate(surveys.update_template(db, viewer, template_id, body))


@router.get("/answers", response_model=PageOut[AnswerOut], summary="Survey answers, newest first")
def list_answers(
    viewer: CurrentViewer,
    db: Db,
    limit: Limit = 50,
    cursor: Cursor = None,
    unit_id: int | None = None,
    customer_id: int | None = None,
    ticket_id: int | None = None,
    agent_id: int | None = None,
    low: Annotated[bool, Query(description="Only answers below the recovery threshold.")] = False,
) -> PageOut[AnswerOut]:
    unit = units.get_unit(db, viewer, unit_id) if unit_id is not None else None
    stmt = queries.answers(
        db,
        viewer,
        unit=unit,
        customer_id=customer_id,
        ticket_id=ticket_id,
        agent_id=agent_id,
        low_only=low,
    )
    page = paginate(db, stmt, key=SurveyAnswer.id, limit=limit, cursor=cursor, descending=True)
    return PageOut[AnswerOut](
        items=[AnswerOut.model_validate(a) for a in page.items], next_cursor=page.next_cursor
    )


@router.get("/answers/{answer_id}", response_model=AnswerOut)
def get_answer(answer_id: int, viewer: CurrentViewer, db: Db) -> AnswerOut:
    return AnswerOut.model_validate(get_visible(db, SurveyAnswer, answer_id, viewer))


class PublicSurvey(BaseModel):
    locale: str
    expires_at: str
    ticket_number: str | None
    ticket_subject: str | None
    dimensions: list[str]
    texts: dict[str, str]


def _refuse(request: Request, opened: surveys.Opened) -> JSONResponse:
    from kefu.i18n import gettext

    return problem(
        opened.status,
        HTTP_TITLES.get(opened.status, HTTP_TITLES[400]),
        gettext(opened.error) if opened.error else None,
        "/problems/survey-link",
        instance="/surveys/…",  # the token is a secret: never echoed
    )


@router.get(
    "/{token}",
    response_model=PublicSurvey,
    summary="The survey behind a link (public: no sign-in; rate-limited per address)",
)
def open_survey(token: str, request: Request, db: Db) -> Any:
    opened = surveys.open_link(db, token, request_context(request)["remote_addr"] or "")
    if opened.invitation is None:
        db.commit()  # a wrong token counts against the address
        return _refuse(request, opened)
    inv, template = opened.invitation, opened.template
    texts = template.texts if template else {}
    return PublicSurvey(
        locale=inv.locale,
        expires_at=inv.expires_at.isoformat(),
        ticket_number=opened.ticket_number,
        ticket_subject=opened.ticket_subject,
        dimensions=list(DIMENSIONS),
        texts={k: (v.get(inv.locale) or v.get("zh_CN") or "") for k, v in texts.items()},
    )


@router.post(
    "/{token}",
    status_code=201,
    summary="Answer a survey (public: no sign-in; once per link)",
)
def answer_survey(token: str, body: AnswerIn, request: Request, db: Db) -> JSONResponse:
    opened = surveys.submit_link(db, token, body, request_context(request)["remote_addr"] or "")
    if opened.answer is None:
        db.commit()
        return _refuse(request, opened)
    return JSONResponse({"answered": True}, status_code=201)


@recovery_router.get("", response_model=PageOut[RecoveryOut], summary="Service recovery tasks")
def list_recovery(
    viewer: CurrentViewer,
    db: Db,
    limit: Limit = 50,
    cursor: Cursor = None,
    state: Annotated[str | None, Query(pattern="^(open|done)$")] = "open",
) -> PageOut[RecoveryOut]:
    stmt = queries.recovery_tasks(db, viewer, state=state)
    page = paginate(
        db, stmt, key=(RecoveryTask.due_at, RecoveryTask.id), limit=limit, cursor=cursor
    )
    return PageOut[RecoveryOut](
        items=[RecoveryOut.model_validate(t) for t in page.items], next_cursor=page.next_cursor
    )


@recovery_router.get("/{task_id}", response_model=RecoveryOut)
def get_recovery(task_id: int, viewer: CurrentViewer, db: Db) -> RecoveryOut:
    return RecoveryOut.model_validate(surveys.get_recovery(db, viewer, task_id))


@recovery_router.post(
    "/{task_id}/done",
    response_model=RecoveryOut,
    summary="Record the recovery; the customer is then asked again",
)
def complete_recovery(
    task_id: int, body: RecoveryDoneIn, viewer: CurrentViewer, db: Db
) -> RecoveryOut:
    return RecoveryOut.model_validate(surveys.complete_recovery(db, viewer, task_id, body))
