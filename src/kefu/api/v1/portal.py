"""/api/v1/portal: the contact API — what a signed-in contact does in the portal's pages, as
JSON: list their requests, follow one's public timeline, submit, reply, confirm, reopen, share
files and download shared ones.

A contact authenticates with their portal sign-in (e-mail address or mobile phone, and the
password set through the invitation link): `POST /portal/token` answers a short-lived Bearer
token (`kefuc_…`), kept as a portal session of kind `api` (its SHA-256 only). It opens this
API and nothing else; staff tokens, staff cookies and the portal's browser cookie open none
of it. Every route calls `kefu.portal.tickets`, the same services the pages use, so scope
(their customer; a group administrator's branches too), the public timeline and the intake
are the pages' own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Request, Response, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from kefu.api.v1 import problems
from kefu.api.v1.common import Cursor, IdempotencyKey, Limit, PageOut, created, idempotent_create
from kefu.api.v1.deps import UNKNOWN_TOKEN, Db, bearer_token, language, request_context
from kefu.errors import Unauthorized
from kefu.i18n import DEFAULT_LOCALE, N_, get_locale, gettext, set_locale
from kefu.pagination import paginate
from kefu.portal import service as accounts
from kefu.portal import tickets as portal
from kefu.portal.schemas import PortalReply, PortalTicketIn
from kefu.scope import Viewer
from kefu.tickets import attachments
from kefu.tickets import queries as ticket_queries
from kefu.tickets.models import Ticket, TicketAttachment
from kefu.validation import Input

router = APIRouter(prefix="/portal", tags=["portal"])

AUTH = (
    "For customer contacts. Authenticate with `Authorization: Bearer <token>`, the token from "
    "`POST /api/v1/portal/token` (the contact's portal sign-in); staff tokens are refused here."
)
NO_CONTACT_TOKEN = N_(
    "Send a contact token from POST /api/v1/portal/token in the Authorization header."
)
STAFF_TOKEN = N_(
    "This is a staff token; the contact API takes a contact token from POST /api/v1/portal/token."
)


# --- the caller -------------------------------------------------------------------------------


def current_contact(
    request: Request,
    db: Db,
    chosen: Annotated[str | None, Depends(language)],
    authorization: Annotated[str | None, Header()] = None,
) -> Viewer:
    plain = bearer_token(authorization, missing=NO_CONTACT_TOKEN)
    if not plain.startswith(accounts.TOKEN_PREFIX):
        raise Unauthorized(STAFF_TOKEN if plain.startswith("kefu_") else UNKNOWN_TOKEN)
    ctx = request_context(request)
    found = accounts.session_viewer(
        db, plain, kind=accounts.API, request_id=ctx["request_id"], remote_addr=ctx["remote_addr"]
    )
    if found is None:
        raise Unauthorized(UNKNOWN_TOKEN)
    if chosen is None:
        request.state.locale = found.contact.locale  # the contact's own choice
    return found.viewer


CurrentContact = Annotated[Viewer, Depends(current_contact)]


def _speak(request: Request) -> None:
    """Texts in the answer (state words, category names) in the caller's language."""
    set_locale(getattr(request.state, "locale", None) or DEFAULT_LOCALE)


# --- shapes -----------------------------------------------------------------------------------


class TokenRequest(Input):
    login: str = Field(min_length=1, max_length=254, description="E-mail address or mobile phone.")
    password: str = Field(min_length=1, max_length=200)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime


class CustomerRef(BaseModel):
    id: int
    name: str


class MeOut(BaseModel):
    contact_id: int
    name: str
    customer: CustomerRef
    group_admin: bool
    locale: str
    customers: list[CustomerRef] = Field(
        description="Whom the contact may submit for: their customer; a group administrator "
        "also the group's branches."
    )


class RequestOut(BaseModel):
    """A request as the customer sees it: no routing, assignment, SLA or staff names."""

    id: int
    number: str
    customer_id: int
    category_code: str
    category: str = Field(description="The category's name in the caller's language.")
    subject: str
    state: str
    state_label: str = Field(description="The state in the customer's words.")
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None


class FileOut(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    created_at: datetime
    url: str


class EntryOut(BaseModel):
    id: int
    at: datetime
    kind: Literal["message", "state", "file"]
    from_customer: bool
    author: str = Field(description="The contact's name on the customer's side; '' for the team.")
    body: str = Field(description="Sanitised HTML (messages).")
    state_from: str
    state_to: str
    file: FileOut | None


class RequestDetail(RequestOut):
    may_reopen: bool = Field(description="Resolved, and still within the reopening window.")
    timeline: list[EntryOut] = Field(description="The public timeline, oldest first.")


class FieldOut(BaseModel):
    key: str
    label: str
    type: str
    choices: list[dict[str, str]] = Field(description="`{value, label}` of a choice field.")


class CategoryOut(BaseModel):
    code: str
    parent_code: str | None
    name: str
    fields: list[FieldOut] = Field(
        description="Custom fields one may fill in `custom_fields` (none is required here)."
    )


def _names(db: Session) -> dict[str, str]:
    en = get_locale() == "en"
    return {c.code: c.name_en if en else c.name_zh for c in ticket_queries.categories(db)}


def _out(ticket: Ticket, names: dict[str, str]) -> RequestOut:
    return RequestOut(
        id=ticket.id,
        number=ticket.number,
        customer_id=ticket.customer_id,
        category_code=ticket.category_code,
        category=names.get(ticket.category_code, ticket.category_code),
        subject=ticket.subject,
        state=ticket.state,
        state_label=gettext(portal.STATES.get(ticket.state, ticket.state)),
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        resolved_at=ticket.resolved_at,
    )


def _file(request: Request, row: TicketAttachment) -> FileOut:
    root = request.scope.get("root_path", "")
    return FileOut(
        id=row.id,
        filename=row.filename,
        content_type=row.content_type,
        size=row.size,
        created_at=row.created_at,
        url=f"{root}/portal/tickets/{row.ticket_id}/attachments/{row.id}",
    )


def _detail(request: Request, db: Session, viewer: Viewer, ticket: Ticket) -> RequestDetail:
    entries = [
        EntryOut(
            id=e.id,
            at=e.at,
            kind=e.kind,  # type: ignore[arg-type]
            from_customer=e.from_customer,
            author=e.author,
            body=e.body,
            state_from=e.state_from,
            state_to=e.state_to,
            file=_file(request, e.file) if e.file is not None else None,
        )
        for e in portal.timeline(db, viewer, ticket)
    ]
    base = _out(ticket, _names(db))
    return RequestDetail(
        **base.model_dump(), may_reopen=portal.may_reopen(ticket), timeline=entries
    )


# --- signing in -------------------------------------------------------------------------------


@router.post(
    "/token",
    response_model=TokenOut,
    summary="A contact signs in: e-mail address or mobile phone and password → Bearer token",
    description="The contact's portal sign-in, with the portal's lock-out and the per-address "
    "throttle. The token is valid for `KEFU_ACCESS_TOKEN_MINUTES` (default 60) and opens "
    "`/api/v1/portal` only; `DELETE /api/v1/portal/token` ends it.",
)
def create_token(body: TokenRequest, request: Request, db: Db) -> TokenOut | JSONResponse:
    ctx = request_context(request)
    result = accounts.authenticate(db, body.login, body.password, ctx["remote_addr"] or "")
    if result.account is None:
        db.commit()  # the failure counts towards lock-out and throttling; then we refuse
        _speak(request)
        return problems.sign_in_failed(request, result.status, result.error)
    plain, row = accounts.issue_token(
        db,
        result.account,
        remote_addr=ctx["remote_addr"],
        user_agent=request.headers.get("user-agent"),
        request_id=ctx["request_id"],
    )
    return TokenOut(access_token=plain, expires_at=row.expires_at)


@router.delete(
    "/token", status_code=204, summary="Sign out: the token ends at once", description=AUTH
)
def delete_token(
    viewer: CurrentContact,
    db: Db,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    accounts.end_session(db, bearer_token(authorization, NO_CONTACT_TOKEN), kind=accounts.API)
    return Response(status_code=204)


@router.get("/me", response_model=MeOut, summary="The signed-in contact", description=AUTH)
def me(viewer: CurrentContact, db: Db) -> MeOut:
    customers = portal.customers_for(db, viewer)
    own = next(c for c in customers if c.id == viewer.customer_id)
    return MeOut(
        contact_id=viewer.contact_id or 0,
        name=viewer.username,
        customer=CustomerRef(id=own.id, name=own.name),
        group_admin=viewer.group_admin,
        locale=viewer.locale,
        customers=[CustomerRef(id=c.id, name=c.name) for c in customers],
    )


@router.get(
    "/categories",
    response_model=list[CategoryOut],
    summary="Request categories and the custom fields each asks",
    description=AUTH,
)
def categories(request: Request, viewer: CurrentContact, db: Db) -> list[CategoryOut]:
    _speak(request)
    en = get_locale() == "en"
    out = []
    for c in ticket_queries.categories(db):
        fields = [
            FieldOut(
                key=f.key,
                label=f.label_en if en else f.label_zh,
                type=f.type,
                choices=[
                    {"value": ch["value"], "label": ch["label_en"] if en else ch["label_zh"]}
                    for ch in f.choices
                ],
            )
            for f in portal.request_fields(db, viewer, c.code)
        ]
        out.append(
            CategoryOut(
                code=c.code,
                parent_code=c.parent_code,
                name=c.name_en if en else c.name_zh,
                fields=fields,
            )
        )
    return out


# --- requests ---------------------------------------------------------------------------------


@router.get(
    "/tickets",
    response_model=PageOut[RequestOut],
    summary="The contact's requests, newest first",
    description=AUTH + " Their customer's requests; a group administrator's also the "
    "branches'. `show`: open (new, in progress, waiting, on hold), resolved (to confirm), "
    "closed, or all.",
)
def list_requests(
    request: Request,
    viewer: CurrentContact,
    db: Db,
    show: Literal["open", "resolved", "closed", "all"] = "open",
    limit: Limit = 20,
    cursor: Cursor = None,
) -> PageOut[RequestOut]:
    _speak(request)
    stmt = portal.requests(db, viewer, show)
    page = paginate(db, stmt, key=Ticket.id, limit=limit, cursor=cursor, descending=True)
    names = _names(db)
    return PageOut[RequestOut](
        items=[_out(t, names) for t in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "/tickets",
    status_code=201,
    response_model=RequestDetail,
    summary="Submit a request (the portal's intake: channel portal)",
    description=AUTH + " `customer_id`: the contact's customer by default; a group "
    "administrator may name a branch. `custom_fields`: values of the category's fields "
    "(see `GET /portal/categories`); none is required of a customer, but what is given is "
    "checked (422 naming `custom_fields.<key>`). `Idempotency-Key` makes retries safe.",
)
def submit(
    body: PortalTicketIn,
    request: Request,
    viewer: CurrentContact,
    db: Db,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    _speak(request)

    def create() -> tuple[RequestDetail, str]:
        ticket = portal.submit(db, viewer, body, [])
        location = f"{request.scope.get('root_path', '')}/portal/tickets/{ticket.id}"
        return _detail(request, db, viewer, ticket), location

    return idempotent_create(request, db, viewer, idempotency_key, body, create)


@router.get(
    "/tickets/{ticket_id}",
    response_model=RequestDetail,
    summary="One request with its public timeline",
    description=AUTH + " Internal notes, routing, SLA and staff names never appear; another "
    "customer's request answers 404.",
)
def get_request(ticket_id: int, request: Request, viewer: CurrentContact, db: Db) -> RequestDetail:
    _speak(request)
    return _detail(request, db, viewer, portal.get_request(db, viewer, ticket_id))


@router.post(
    "/tickets/{ticket_id}/replies",
    status_code=201,
    response_model=RequestDetail,
    summary="Reply: a pending, on-hold or resolved request opens again",
    description=AUTH + " A resolved request only within the reopening window; a closed one "
    "is refused (422 naming `body`): submit a new request instead.",
)
def reply(
    ticket_id: int, body: PortalReply, request: Request, viewer: CurrentContact, db: Db
) -> JSONResponse:
    _speak(request)
    portal.reply(db, viewer, ticket_id, body, [])
    ticket = portal.get_request(db, viewer, ticket_id)
    return created(
        request,
        _detail(request, db, viewer, ticket),
        f"{request.scope.get('root_path', '')}/portal/tickets/{ticket_id}",
    )


@router.post(
    "/tickets/{ticket_id}/confirm",
    response_model=RequestDetail,
    summary="Confirm that a resolved request is done: it closes",
    description=AUTH + " Only a resolved request (else 422 naming `state`).",
)
def confirm(ticket_id: int, request: Request, viewer: CurrentContact, db: Db) -> RequestDetail:
    _speak(request)
    ticket = portal.confirm(db, viewer, ticket_id)
    return _detail(request, db, viewer, ticket)


@router.post(
    "/tickets/{ticket_id}/reopen",
    response_model=RequestDetail,
    summary="Reopen a resolved request, with the reason (within the reopening window)",
    description=AUTH + " The reason becomes a reply; only a resolved request (422 naming "
    "`state`), within the window (422 naming `body`).",
)
def reopen(
    ticket_id: int, body: PortalReply, request: Request, viewer: CurrentContact, db: Db
) -> RequestDetail:
    _speak(request)
    ticket = portal.reopen(db, viewer, ticket_id, body)
    return _detail(request, db, viewer, ticket)


@router.post(
    "/tickets/{ticket_id}/attachments",
    status_code=201,
    response_model=FileOut,
    summary="Share a file on a request (multipart `file`)",
    description=AUTH + " The attachment checks of every channel apply (size limit, kind by "
    "content, a name that matches it: 422 naming `file`); a closed request is refused. The "
    "request's state does not change; the team sees the file in the timeline.",
)
def upload(
    ticket_id: int, request: Request, file: UploadFile, viewer: CurrentContact, db: Db
) -> JSONResponse:
    portal.get_request(db, viewer, ticket_id)  # out of scope: 404 before reading the upload
    # At most one byte past the limit, so an oversized upload costs no more memory.
    data = file.file.read(attachments.max_bytes() + 1)
    row = portal.share_files(db, viewer, ticket_id, [(file.filename or "", data)])[0]
    body = _file(request, row)
    return created(request, body, body.url)


@router.get(
    "/tickets/{ticket_id}/attachments",
    response_model=list[FileOut],
    summary="The files shared on a request (the contact's and those staff shared)",
    description=AUTH,
)
def list_files(ticket_id: int, request: Request, viewer: CurrentContact, db: Db) -> list[FileOut]:
    ticket = portal.get_request(db, viewer, ticket_id)
    return [_file(request, f) for f in portal.shared_files(db, viewer, ticket)]


@router.get(
    "/tickets/{ticket_id}/attachments/{attachment_id}",
    response_class=FileResponse,
    summary="Download a shared file",
    description=AUTH + " A staff-only file, or one of another request, answers 404.",
)
def download(ticket_id: int, attachment_id: int, viewer: CurrentContact, db: Db) -> FileResponse:
    row, path = portal.open_file(db, viewer, ticket_id, attachment_id)
    return FileResponse(
        path,
        media_type=row.content_type,
        filename=row.filename,
        headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"},
    )
