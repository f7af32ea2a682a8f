"""The wording of outgoing mail: one template per (kind, language), zh_CN and en built in,
editable by administrators. Placeholders are `{name}` from a fixed list — nothing else is
evaluated, so a template cannot reach into the data."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kefu.audit.service import record
from kefu.clock import now
from kefu.errors import Forbidden, Invalid
from kefu.i18n import N_
from kefu.mail.models import MailTemplate
from kefu.scope import Viewer

LOCALES = ("zh_CN", "en")
PLACEHOLDERS = (
    "number",
    "subject",
    "body",
    "contact",
    "customer",
    "unit",
    "topic",
    "url",
    "expires",
)
PLACEHOLDER_RE = re.compile(r"\{(\w*)\}")
KINDS = {
    "ticket.acknowledged": N_("Acknowledgement of a new ticket (to the customer)"),
    "ticket.reply": N_("Public reply (to the customer)"),
    "ticket.resolved": N_("Ticket resolved (to the customer)"),
    "staff.notification": N_("Notification (to staff)"),
    "portal.invitation": N_("Invitation to the customer portal (to a contact)"),
}


@dataclass(frozen=True)
class Wording:
    subject: str
    body: str


DEFAULTS: dict[tuple[str, str], Wording] = {
    ("ticket.acknowledged", "zh_CN"): Wording(
        "[{number}] 我们已收到您的来信：{subject}",
        "{contact}，您好：\n\n我们已收到您的来信，登记为工单 {number}，会尽快处理并回复您。"
        "\n如需补充，直接回复本邮件即可（请保留主题中的工单编号）。\n\n{unit}",
    ),
    ("ticket.acknowledged", "en"): Wording(
        "[{number}] We received your message: {subject}",
        "Dear {contact},\n\nWe received your message and opened ticket {number}; we will "
        "answer as soon as we can.\nTo add anything, just reply to this mail (keep the "
        "ticket number in the subject).\n\n{unit}",
    ),
    ("ticket.reply", "zh_CN"): Wording(
        "Re: [{number}] {subject}",
        "{body}\n\n——\n{unit}\n工单编号：{number}。直接回复本邮件即可继续沟通。",
    ),
    ("ticket.reply", "en"): Wording(
        "Re: [{number}] {subject}",
        "{body}\n\n--\n{unit}\nTicket {number}. Reply to this mail to continue.",
    ),
    ("ticket.resolved", "zh_CN"): Wording(
        "[{number}] 您的工单已解决：{subject}",
        "{contact}，您好：\n\n工单 {number} 已解决。如问题仍未解决，直接回复本邮件，"
        "工单会重新打开。\n\n{unit}",
    ),
    ("ticket.resolved", "en"): Wording(
        "[{number}] Your ticket is resolved: {subject}",
        "Dear {contact},\n\nTicket {number} is resolved. If the problem is still there, "
        "reply to this mail and the ticket opens again.\n\n{unit}",
    ),
    ("staff.notification", "zh_CN"): Wording(
        "[{number}] {topic}：{subject}",
        "{topic}\n\n工单：{number} {subject}\n客户：{customer}\n\n{unit}",
    ),
    ("portal.invitation", "zh_CN"): Wording(
        "邀请您使用客户服务门户",
        "{contact}，您好：\n\n{unit}邀请您使用客户服务门户，在线提交和跟踪服务请求。"
        "\n请打开下面的链接设置密码（链接仅可使用一次，{expires} 前有效）：\n{url}\n",
    ),
    ("portal.invitation", "en"): Wording(
        "Your invitation to the customer portal",
        "Dear {contact},\n\n{unit} invites you to the customer portal, where you can "
        "submit and follow your requests.\nOpen this link to set your password (it works "
        "once, until {expires}):\n{url}\n",
    ),
    ("staff.notification", "en"): Wording(
        "[{number}] {topic}: {subject}",
        "{topic}\n\nTicket: {number} {subject}\nCustomer: {customer}\n\n{unit}",
    ),
}


def fill(template: str, values: dict[str, str]) -> str:
    """`{name}` replaced by its value; anything else stays as written."""
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def wording(session: Session, key: str, locale: str) -> Wording:
    loc = locale if locale in LOCALES else "zh_CN"
    row = session.get(MailTemplate, (key, loc))
    if row is not None:
        return Wording(row.subject, row.body)
    return DEFAULTS[(key, loc)]


def all_wordings(session: Session) -> dict[tuple[str, str], tuple[Wording, bool]]:
    """Every (kind, language) with its wording and whether an administrator changed it."""
    custom = {(r.key, r.locale): r for r in session.scalars(select(MailTemplate))}
    out = {}
    for key in KINDS:
        for loc in LOCALES:
            row = custom.get((key, loc))
            out[(key, loc)] = (
                (Wording(row.subject, row.body), True) if row else (DEFAULTS[(key, loc)], False)
            )
    return out


def _check(field: str, text: str, max_len: int) -> str:
    if field == "subject" and ("\r" in text or "\n" in text):
        raise Invalid.field(field, N_("A subject is one line."))
    if not text.strip():
        raise Invalid.field(field, N_("This field cannot be empty."))
    if len(text) > max_len:
        raise Invalid.field(field, N_("At most {limit} characters."), limit=max_len)
    for name in PLACEHOLDER_RE.findall(text):
        if name not in PLACEHOLDERS:
            raise Invalid.field(
                field,
                N_("Unknown placeholder {{{placeholder}}}; use {names}."),
                placeholder=name,
                names=", ".join("{" + p + "}" for p in PLACEHOLDERS),
            )
    return text


def save_wording(
    session: Session, viewer: Viewer, key: str, locale: str, subject: str, body: str
) -> MailTemplate:
    if not viewer.is_admin:
        raise Forbidden()
    if key not in KINDS:
        raise Invalid.field("key", N_("Unknown mail template."))
    if locale not in LOCALES:
        raise Invalid.field("locale", N_("Unknown language."))
    subject = _check("subject", subject.strip(), 200)
    body = _check("body", body.replace("\r\n", "\n"), 20_000)
    before = wording(session, key, locale)
    row = session.get(MailTemplate, (key, locale))
    if row is None:
        row = MailTemplate(key=key, locale=locale)
        session.add(row)
    row.subject, row.body, row.updated_by, row.updated_at = subject, body, viewer.username, now()
    record(
        session,
        viewer,
        "mail_template.update",
        "mail_template",
        f"{key}:{locale}",
        {
            "subject": {"before": before.subject, "after": subject},
            "body": {"before": before.body, "after": body},
        },
    )
    session.flush()
    return row


def reset_wording(session: Session, viewer: Viewer, key: str, locale: str) -> None:
    """Back to the built-in wording."""
    if not viewer.is_admin:
        raise Forbidden()
    if (key, locale) not in DEFAULTS:
        raise Invalid.field("key", N_("Unknown mail template."))
    row = session.get(MailTemplate, (key, locale))
    if row is not None:
        record(
            session,
            viewer,
            "mail_template.reset",
            "mail_template",
            f"{key}:{locale}",
            {"subject": {"before": row.subject, "after": None}},
        )
        session.delete(row)
        session.flush()
