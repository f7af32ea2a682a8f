"""Email in: mailboxes (administrators) and held mail — the unknown-sender queue, where
agents name a customer, and the quarantine, where administrators retry or drop."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from kefu import i18n
from kefu.errors import Invalid
from kefu.i18n import N_
from kefu.mail import queries, templates
from kefu.mail import service as mail
from kefu.mail.models import InboundMail, Mailbox
from kefu.mail.schemas import AssignIn, MailboxCreate, MailboxUpdate
from kefu.pagination import paginate
from kefu.tickets import queries as ticket_queries
from kefu.web.common import (
    FUNCTION_LABELS,
    CurrentMe,
    Db,
    Form,
    Me,
    PostedForm,
    all_rows,
    parse,
    redirect,
    render,
    require_role,
    text,
    url_with,
)
from kefu.web.units import visible_tree

router = APIRouter()

SECURITY_OPTIONS = [
    ("tls", N_("TLS (port 993)")),
    ("starttls", N_("STARTTLS (port 143)")),
    ("plain", N_("No encryption (a server on this machine only)")),
]
REASON_LABELS = {
    "too_large": N_("Too large"),
    "malformed": N_("Malformed MIME"),
    "zip_bomb": N_("Archive that unpacks to far more than it weighs"),
    "no_sender": N_("No sender"),
    "unknown_sender": N_("Sender not known"),
    "ambiguous_sender": N_("Sender belongs to several customers"),
    "unauthenticated": N_("Sender failed authentication (DMARC)"),
    "error": N_("Intake failed"),
}
STATUS_LABELS = {
    "unknown_sender": N_("Unknown sender"),
    "quarantined": N_("Quarantined"),
    "retry": N_("Queued for another try"),
}
FIELDS = (
    "name",
    "address",
    "unit_id",
    "function",
    "category_code",
    "imap_host",
    "imap_port",
    "imap_security",
    "imap_user",
    "imap_password",
    "imap_folder",
)
BLANK = {
    "name": "",
    "address": "",
    "unit_id": "",
    "function": "",
    "category_code": "other",
    "imap_host": "",
    "imap_port": "993",
    "imap_security": "tls",
    "imap_user": "",
    "imap_password": "",
    "imap_folder": "INBOX",
}


def _choices(db: Session, me: Me) -> dict[str, Any]:
    english = i18n.get_locale() == "en"
    return {
        "unit_choices": visible_tree(db, me).choices(active_only=True),
        "function_options": list(FUNCTION_LABELS.items()),
        "security_options": SECURITY_OPTIONS,
        "category_options": [
            (c.code, c.name_en if english else c.name_zh) for c in ticket_queries.categories(db)
        ],
    }


def _values(form: Any) -> dict[str, Any]:
    values: dict[str, Any] = {name: text(form, name) for name in FIELDS}
    values["is_active"] = text(form, "is_active") == "1"
    return values


def _clean(values: dict[str, Any], *, keep_password: bool) -> dict[str, Any]:
    data = {k: v for k, v in values.items() if k != "is_active"}
    data["function"] = data["function"] or None
    if keep_password and not data["imap_password"]:
        data.pop("imap_password")
    data["is_active"] = values["is_active"]
    return data


@router.get("/mailboxes")
def mailboxes_page(request: Request, me: CurrentMe, db: Db) -> Response:
    require_role(me, "admin")
    return _list(request, db, me, Form({**BLANK, "is_active": True}, key="new"))


def _list(request: Request, db: Session, me: Me, form: Form, status: int = 200) -> Response:
    boxes = all_rows(db, queries.mailboxes(me.viewer), Mailbox.id)
    units = visible_tree(db, me).by_id
    return render(
        request,
        "mail/mailboxes.html",
        {"boxes": boxes, "units": units, "form": form, **_choices(db, me)},
        status=status,
    )


@router.post("/mailboxes")
def create_mailbox(request: Request, me: CurrentMe, db: Db, form: PostedForm) -> Response:
    require_role(me, "admin")
    values = _values(form)
    try:
        data = parse(MailboxCreate, _clean(values, keep_password=False))
        mail.create_mailbox(db, me.viewer, data)
    except Invalid as exc:
        values["imap_password"] = ""  # never echoed back into the page
        return _list(request, db, me, Form(values, exc.errors, key="new"), status=422)
    return redirect(request, "/mailboxes", "created")


def _edit(
    request: Request, db: Session, me: Me, box: Mailbox, form: Form, status: int = 200
) -> Response:
    return render(
        request, "mail/mailbox.html", {"box": box, "form": form, **_choices(db, me)}, status=status
    )


@router.get("/mailboxes/{mailbox_id}")
def mailbox_page(mailbox_id: int, request: Request, me: CurrentMe, db: Db) -> Response:
    require_role(me, "admin")
    box = mail.get_mailbox(db, me.viewer, mailbox_id)
    values = {name: getattr(box, name) for name in FIELDS if name != "imap_password"}
    values |= {"imap_password": "", "function": box.function or "", "is_active": box.is_active}
    return _edit(request, db, me, box, Form(values))


@router.post("/mailboxes/{mailbox_id}")
def update_mailbox(
    mailbox_id: int, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    require_role(me, "admin")
    box = mail.get_mailbox(db, me.viewer, mailbox_id)
    values = _values(form)
    try:
        data = parse(MailboxUpdate, _clean(values, keep_password=True))
        mail.update_mailbox(db, me.viewer, mailbox_id, data)
    except Invalid as exc:
        values["imap_password"] = ""
        return _edit(request, db, me, box, Form(values, exc.errors), status=422)
    return redirect(request, f"/mailboxes/{mailbox_id}", "saved")


@router.get("/mail/held")
def held_page(
    request: Request, me: CurrentMe, db: Db, status: str = "", cursor: str | None = None
) -> Response:
    require_role(me, "agent", "supervisor", "manager")
    wanted = status if status in STATUS_LABELS else None
    stmt = queries.inbound(me.viewer, status=wanted, held_only=True)
    page = paginate(db, stmt, key=InboundMail.id, limit=50, cursor=cursor or None, descending=True)
    return render(
        request,
        "mail/held.html",
        {
            "mails": page.items,
            "status": wanted or "",
            "status_labels": STATUS_LABELS,
            "reason_labels": REASON_LABELS,
            "next_url": url_with(request, cursor=page.next_cursor) if page.next_cursor else None,
            "first_url": url_with(request, cursor=None) if cursor else None,
        },
    )


@router.post("/mail/held/{mail_id}/{action}")
def act_on_held(
    mail_id: int, action: str, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    if action == "retry":
        mail.retry_mail(db, me.viewer, mail_id)
        return redirect(request, "/mail/held", "saved")
    if action == "drop":
        mail.drop_mail(db, me.viewer, mail_id)
        return redirect(request, "/mail/held", "saved")
    if action == "assign":
        customer = text(form, "customer_id").strip()
        data = parse(AssignIn, {"customer_id": customer if customer.isdigit() else -1})
        ticket = mail.assign_mail(db, me.viewer, mail_id, data)
        return redirect(request, f"/tickets/{ticket.id}", "created")
    raise Invalid.field("action", N_("Unknown action."))


@router.get("/mail/templates")
def templates_page(request: Request, me: CurrentMe, db: Db) -> Response:
    require_role(me, "admin")
    return _templates(request, db)


def _templates(
    request: Request,
    db: Session,
    failed: tuple[str, str] | None = None,
    form: Form | None = None,
    status: int = 200,
) -> Response:
    forms = {}
    for (key, loc), (wording, custom) in templates.all_wordings(db).items():
        forms[(key, loc)] = (
            (
                form
                if failed == (key, loc) and form is not None
                else Form({"subject": wording.subject, "body": wording.body}, key=f"{key}-{loc}")
            ),
            custom,
        )
    return render(
        request,
        "mail/templates.html",
        {
            "kinds": templates.KINDS,
            "forms": forms,
            "placeholders": templates.PLACEHOLDERS,
            "languages": (("zh_CN", "中文"), ("en", "English")),
        },
        status=status,
    )


@router.post("/mail/templates/{key}/{locale}")
def save_template(
    key: str, locale: str, request: Request, me: CurrentMe, db: Db, form: PostedForm
) -> Response:
    require_role(me, "admin")
    values = {"subject": text(form, "subject"), "body": text(form, "body")}
    if text(form, "reset") == "1":
        templates.reset_wording(db, me.viewer, key, locale)
        return redirect(request, "/mail/templates", "saved")
    try:
        templates.save_wording(db, me.viewer, key, locale, values["subject"], values["body"])
    except Invalid as exc:
        failed = Form(values, exc.errors, key=f"{key}-{locale}")
        return _templates(request, db, (key, locale), failed, status=422)
    return redirect(request, "/mail/templates", "saved")
