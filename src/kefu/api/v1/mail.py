"""Mailboxes (administrators) and the mail intake log: the unknown-sender queue and the
quarantine, with retry, drop and assign."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from kefu.api.v1.common import Cursor, IdempotencyKey, Limit, PageOut, created, idempotent_create
from kefu.api.v1.deps import CurrentViewer, Db
from kefu.mail import queries, templates
from kefu.mail import service as mail
from kefu.mail.models import InboundMail, Mailbox
from kefu.mail.schemas import (
    AssignIn,
    InboundMailOut,
    MailboxCreate,
    MailboxOut,
    MailboxUpdate,
    TemplateIn,
    TemplateOut,
)
from kefu.pagination import paginate
from kefu.tickets.schemas import TicketOut

router = APIRouter(prefix="/mailboxes", tags=["email"])
inbound_router = APIRouter(prefix="/inbound-mails", tags=["email"])
templates_router = APIRouter(prefix="/mail-templates", tags=["email"])

Status = Literal["ticket", "reply", "ignored", "unknown_sender", "quarantined", "dropped", "retry"]


@router.get("", response_model=PageOut[MailboxOut], summary="Mailboxes of the caller's units")
def list_mailboxes(
    viewer: CurrentViewer, db: Db, limit: Limit = 50, cursor: Cursor = None
) -> PageOut[MailboxOut]:
    page = paginate(db, queries.mailboxes(viewer), key=Mailbox.id, limit=limit, cursor=cursor)
    return PageOut[MailboxOut](
        items=[MailboxOut.model_validate(b) for b in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "",
    status_code=201,
    response_model=MailboxOut,
    summary="Add a mailbox (administrators); the password is stored encrypted",
)
def create_mailbox(
    body: MailboxCreate,
    request: Request,
    viewer: CurrentViewer,
    db: Db,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    def create() -> tuple[MailboxOut, str]:
        box = mail.create_mailbox(db, viewer, body)
        return MailboxOut.model_validate(box), (
            f"{request.scope.get('root_path', '')}/mailboxes/{box.id}"
        )

    return idempotent_create(request, db, viewer, idempotency_key, body, create)


@router.get("/{mailbox_id}", response_model=MailboxOut)
def get_mailbox(mailbox_id: int, viewer: CurrentViewer, db: Db) -> MailboxOut:
    return MailboxOut.model_validate(mail.get_mailbox(db, viewer, mailbox_id))


@router.patch(
    "/{mailbox_id}",
    response_model=MailboxOut,
    summary="Change a mailbox (administrators); omit the password to keep it",
)
def update_mailbox(
    mailbox_id: int, body: MailboxUpdate, viewer: CurrentViewer, db: Db
) -> MailboxOut:
    return MailboxOut.model_validate(mail.update_mailbox(db, viewer, mailbox_id, body))


@inbound_router.get(
    "",
    response_model=PageOut[InboundMailOut],
    summary="Mails taken in from the caller's mailboxes, newest first",
)
def list_inbound(
    viewer: CurrentViewer,
    db: Db,
    limit: Limit = 50,
    cursor: Cursor = None,
    status: Annotated[Status | None, Query()] = None,
    mailbox_id: int | None = None,
) -> PageOut[InboundMailOut]:
    stmt = queries.inbound(viewer, status=status, mailbox_id=mailbox_id)
    page = paginate(db, stmt, key=InboundMail.id, limit=limit, cursor=cursor, descending=True)
    return PageOut[InboundMailOut](
        items=[InboundMailOut.model_validate(m) for m in page.items], next_cursor=page.next_cursor
    )


@inbound_router.get("/{mail_id}", response_model=InboundMailOut)
def get_inbound(mail_id: int, viewer: CurrentViewer, db: Db) -> InboundMailOut:
    return InboundMailOut.model_validate(mail.get_mail(db, viewer, mail_id))


@inbound_router.post(
    "/{mail_id}/retry",
    response_model=InboundMailOut,
    summary="Try a held mail again at the worker's next run",
)
def retry_inbound(mail_id: int, viewer: CurrentViewer, db: Db) -> InboundMailOut:
    return InboundMailOut.model_validate(mail.retry_mail(db, viewer, mail_id))


@inbound_router.post(
    "/{mail_id}/drop", response_model=InboundMailOut, summary="Drop a held mail for good"
)
def drop_inbound(mail_id: int, viewer: CurrentViewer, db: Db) -> InboundMailOut:
    return InboundMailOut.model_validate(mail.drop_mail(db, viewer, mail_id))


@inbound_router.post(
    "/{mail_id}/assign",
    status_code=201,
    response_model=TicketOut,
    summary="Name the customer of a mail from an unknown sender: it becomes a ticket",
)
def assign_inbound(
    mail_id: int, body: AssignIn, request: Request, viewer: CurrentViewer, db: Db
) -> JSONResponse:
    ticket = mail.assign_mail(db, viewer, mail_id, body)
    return created(
        request,
        TicketOut.model_validate(ticket),
        f"{request.scope.get('root_path', '')}/tickets/{ticket.id}",
    )


def _template_out(key: str, locale: str, wording: templates.Wording, custom: bool) -> TemplateOut:
    return TemplateOut(
        key=key,
        locale=locale,
        subject=wording.subject,
        body=wording.body,
        custom=custom,
        placeholders=list(templates.PLACEHOLDERS),
    )


@templates_router.get(
    "",
    response_model=list[TemplateOut],
    summary="The wording of every outgoing mail, per kind and language",
)
def list_templates(viewer: CurrentViewer, db: Db) -> list[TemplateOut]:
    return [
        _template_out(key, loc, wording, custom)
        for (key, loc), (wording, custom) in templates.all_wordings(db).items()
    ]


@templates_router.put(
    "/{key}/{locale}",
    response_model=TemplateOut,
    summary="Reword one mail in one language (administrators)",
)
def put_template(
    key: str, locale: str, body: TemplateIn, viewer: CurrentViewer, db: Db
) -> TemplateOut:
    row = templates.save_wording(db, viewer, key, locale, body.subject, body.body)
    return _template_out(key, locale, templates.Wording(row.subject, row.body), True)


@templates_router.delete(
    "/{key}/{locale}", status_code=204, summary="Back to the built-in wording (administrators)"
)
def reset_template(key: str, locale: str, viewer: CurrentViewer, db: Db) -> Response:
    templates.reset_wording(db, viewer, key, locale)
    return Response(status_code=204)
