"""Mailboxes and the email intake: every mail becomes a ticket, a message on its ticket, an
entry of the unknown-sender queue, an ignored auto-reply, or a quarantined mail — never
nothing. Services flush; the worker's job commits one mail at a time and only then flags it
as seen on the IMAP server.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from kefu import crypto
from kefu.audit.service import diff, record, snapshot
from kefu.clock import now
from kefu.config import get_settings
from kefu.customers.models import Contact
from kefu.errors import Forbidden, Invalid, NotFound
from kefu.i18n import N_
from kefu.mail import parse, threads
from kefu.mail.models import InboundMail, Mailbox
from kefu.mail.schemas import AssignIn, MailboxCreate, MailboxUpdate
from kefu.notifications.service import notify
from kefu.scope import Viewer, get_visible
from kefu.tickets import attachments, policy
from kefu.tickets import service as tickets
from kefu.tickets.models import Category, Ticket, TicketEvent
from kefu.tickets.schemas import TicketCreate
from kefu.units.models import Unit

# Addresses at these domains are people, not organisations: a sender there is matched by
# their own address only, never by domain.
FREE_MAIL = frozenset(
    """qq.com vip.qq.com foxmail.com 163.com 126.com yeah.net vip.163.com sina.com sina.cn
    sohu.com aliyun.com 139.com 189.cn wo.cn tom.com gmail.com googlemail.com outlook.com
    hotmail.com live.com msn.com yahoo.com yahoo.com.cn icloud.com me.com mac.com aol.com
    proton.me protonmail.com gmx.com gmx.de mail.com yandex.com""".split()
)
MAILBOX_FIELDS = (
    "name",
    "address",
    "unit_id",
    "function",
    "category_code",
    "imap_host",
    "imap_port",
    "imap_security",
    "imap_user",
    "imap_folder",
    "is_active",
)
CID_RE = re.compile(r"""(["'])cid:([^"'\s]{1,200})\1""", re.IGNORECASE)
CID_PLACEHOLDER = "/mail-cid/"


# --- mailboxes ------------------------------------------------------------------------------


def _require_admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise Forbidden(N_("Only administrators may manage mailboxes."))


def _check_refs(session: Session, unit_id: int | None, category_code: str | None) -> None:
    if unit_id is not None:
        unit = session.get(Unit, unit_id)
        if unit is None or not unit.is_active:
            raise Invalid.field("unit_id", N_("No such unit."))
    if category_code is not None:
        category = session.get(Category, category_code)
        if category is None or not category.is_active:
            raise Invalid.field("category_code", N_("Unknown category."))


def _address_free(session: Session, address: str, own_id: int | None = None) -> None:
    taken = session.scalar(select(Mailbox.id).where(func.lower(Mailbox.address) == address.lower()))
    if taken is not None and taken != own_id:
        raise Invalid.field("address", N_("Another mailbox has this address."))


def create_mailbox(session: Session, viewer: Viewer, data: MailboxCreate) -> Mailbox:
    _require_admin(viewer)
    _check_refs(session, data.unit_id, data.category_code)
    _address_free(session, data.address)
    at = now()
    box = Mailbox(
        **data.model_dump(exclude={"imap_password"}),
        imap_password=crypto.encrypt(data.imap_password, crypto.MAILBOX_PASSWORD),
        created_at=at,
        updated_at=at,
    )
    session.add(box)
    session.flush()
    record(
        session,
        viewer,
        "mailbox.create",
        "mailbox",
        box.id,
        diff({}, snapshot(box, MAILBOX_FIELDS)),
    )
    return box


def get_mailbox(session: Session, viewer: Viewer, mailbox_id: int) -> Mailbox:
    return get_visible(session, Mailbox, mailbox_id, viewer)


def update_mailbox(
    session: Session, viewer: Viewer, mailbox_id: int, data: MailboxUpdate
) -> Mailbox:
    box = get_visible(session, Mailbox, mailbox_id, viewer, for_update=True)
    _require_admin(viewer)
    fields = data.model_dump(exclude_unset=True)
    for name in ("name", "address", "unit_id", "category_code", "imap_host", "imap_port"):
        if name in fields and fields[name] is None:
            raise Invalid.field(name, N_("This field cannot be empty."))
    _check_refs(session, fields.get("unit_id"), fields.get("category_code"))
    if fields.get("address"):
        _address_free(session, fields["address"], box.id)
    before = snapshot(box, MAILBOX_FIELDS)
    password = fields.pop("imap_password", None)
    for name, value in fields.items():
        setattr(box, name, value)
    changes = diff(before, snapshot(box, MAILBOX_FIELDS))
    if password:
        box.imap_password = crypto.encrypt(password, crypto.MAILBOX_PASSWORD)
        box.last_error = None
        changes["imap_password"] = {"before": "***", "after": "***"}  # never the secret
    if changes:
        box.updated_at = now()
        record(session, viewer, "mailbox.update", "mailbox", box.id, changes)
    session.flush()
    return box


def password_of(box: Mailbox) -> str:
    """The mailbox's IMAP password in clear (for the worker's login only)."""
    return crypto.decrypt(box.imap_password, crypto.MAILBOX_PASSWORD)


# --- the worker's claims --------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """What the worker needs to log in to one mailbox, read inside the claim's transaction."""

    mailbox_id: int
    host: str
    port: int
    security: str
    user: str
    password: str
    folder: str


def claim_mailboxes(session: Session, lease: timedelta) -> list[Access]:
    """Active mailboxes no other worker holds, each now held by us for `lease`."""
    at = now()
    free = or_(Mailbox.lease_until.is_(None), Mailbox.lease_until < at)
    ids = session.scalars(
        select(Mailbox.id).where(Mailbox.is_active.is_(True), free).order_by(Mailbox.id)
    ).all()
    out = []
    for mailbox_id in ids:
        won = session.execute(
            update(Mailbox)
            .where(Mailbox.id == mailbox_id, free)
            .values(lease_until=at + lease)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if not won:
            continue
        box = session.get(Mailbox, mailbox_id)
        assert box is not None
        try:
            password = password_of(box)
        except crypto.SecretUnreadable:
            box.last_error = "password unreadable: enter it again (the secret key changed)"
            box.lease_until = None
            continue
        out.append(
            Access(
                box.id,
                box.imap_host,
                box.imap_port,
                box.imap_security,
                box.imap_user,
                password,
                box.imap_folder,
            )
        )
    session.flush()
    return out


def release_mailbox(session: Session, mailbox_id: int, error: str | None) -> None:
    session.execute(
        update(Mailbox)
        .where(Mailbox.id == mailbox_id)
        .values(lease_until=None, last_fetch_at=now(), last_error=error[:500] if error else None)
        .execution_options(synchronize_session=False)
    )


# --- raw mails kept for a person to look at -------------------------------------------------


def _raw_path(sha: str) -> Path:
    return get_settings().data_dir / "mail" / sha[:2] / sha


def _keep_raw(raw: bytes) -> str:
    sha = hashlib.sha256(raw).hexdigest()
    target = _raw_path(sha)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".mail-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return sha


def raw_of(row: InboundMail) -> bytes | None:
    if not row.raw_sha256:
        return None
    path = _raw_path(row.raw_sha256)
    return path.read_bytes() if path.exists() else None


def _forget_raw(session: Session, row: InboundMail) -> None:
    sha, row.raw_sha256 = row.raw_sha256, None
    if sha is None:
        return
    session.flush()
    others = session.scalar(select(InboundMail.id).where(InboundMail.raw_sha256 == sha).limit(1))
    if others is None:
        _raw_path(sha).unlink(missing_ok=True)


# --- intake ---------------------------------------------------------------------------------


def _mail_viewer(address: str | None) -> Viewer:
    return Viewer(
        staff_id=None,
        username=(address or "email")[:64],
        unit_id=None,
        unit_path=None,
        roles=frozenset({"admin"}),
        channel="worker",
    )


def find_mail(session: Session, message_key: str) -> InboundMail | None:
    return session.scalar(select(InboundMail).where(InboundMail.message_key == message_key))


def _hold(
    row: InboundMail, raw: bytes | None, status: str, reason: str, detail: str = ""
) -> InboundMail:
    row.status = status
    row.reason = reason
    row.detail = detail[:500] or None
    if raw is not None and len(raw) <= get_settings().mail_max_mb * 1024 * 1024:
        row.raw_sha256 = _keep_raw(raw)
    row.updated_at = now()
    return row


def hold_oversized(
    session: Session, mailbox_id: int, uid: int, uidvalidity: int | None, size: int, header: bytes
) -> InboundMail:
    """A mail too large to download: recorded from its header, left on the server."""
    key, _ = parse.header_key(header)
    existing = find_mail(session, key)
    if existing is not None:
        return existing
    notes: list[str] = []
    msg = parse.BytesParser(policy=parse.compat32).parsebytes(header, headersonly=True)
    row = InboundMail(
        mailbox_id=mailbox_id,
        message_key=key,
        uid=uid,
        uidvalidity=uidvalidity,
        size=size,
        from_address=parse._address(parse.decode_header_value(msg.get("From"), notes)),
        subject=parse.decode_header_value(msg.get("Subject"), notes)[:200],
        received_at=now(),
    )
    limit = get_settings().mail_max_mb
    _hold(row, None, "quarantined", "too_large", f"{size} bytes; the limit is {limit} MB")
    session.add(row)
    session.flush()
    return row


def hold_failed(
    session: Session,
    mailbox_id: int,
    raw: bytes,
    uid: int | None,
    uidvalidity: int | None,
    detail: str,
) -> InboundMail:
    """A mail whose intake failed unexpectedly: quarantined, so the mailbox keeps flowing."""
    key, _ = parse.header_key(raw)
    row = find_mail(session, key)
    if row is None:
        row = InboundMail(
            mailbox_id=mailbox_id,
            message_key=key,
            uid=uid,
            uidvalidity=uidvalidity,
            size=len(raw),
            received_at=now(),
        )
        session.add(row)
    _hold(row, raw, "quarantined", "error", detail)
    session.flush()
    return row


def _subject(text: str) -> str:
    # Subjects are plain text in Kefu: markup-like "<x" is shown, not refused.
    text = re.sub(r"<(?=\s*[A-Za-z!/?])", "‹", " ".join(text.split()))
    return text[:200] or "(no subject)"


@dataclass
class Match:
    customer_id: int | None
    contact_id: int | None
    reason: str | None  # why there is no customer


def _domain(address: str) -> str:
    return address.rpartition("@")[2]


def match_customer(session: Session, address: str) -> Match:
    """The sender's customer: by their contact address, else by their organisation's domain."""
    rows = session.execute(
        select(Contact.id, Contact.customer_id)
        .where(func.lower(Contact.email) == address)
        .order_by(Contact.id)
        .limit(20)
    ).all()
    customers = {r.customer_id for r in rows}
    if len(customers) == 1:
        return Match(rows[0].customer_id, rows[0].id, None)
    if len(customers) > 1:
        return Match(None, None, "ambiguous_sender")
    domain = _domain(address)
    if domain in FREE_MAIL:
        return Match(None, None, "unknown_sender")
    by_domain = session.scalars(
        select(Contact.customer_id)
        .where(func.lower(Contact.email).endswith("@" + domain, autoescape=True))
        .distinct()
        .limit(2)
    ).all()
    if len(by_domain) == 1:
        return Match(by_domain[0], None, None)
    return Match(None, None, "ambiguous_sender" if by_domain else "unknown_sender")


def _sender_belongs(session: Session, ticket: Ticket, address: str) -> bool:
    """The sender is a contact of the ticket's customer, shares its (non-free) domain, or
    wrote to this ticket before."""
    emails = [
        (e or "").lower()
        for e in session.scalars(
            select(Contact.email).where(Contact.customer_id == ticket.customer_id)
        )
    ]
    if address in emails:
        return True
    domain = _domain(address)
    if domain not in FREE_MAIL and any(e.endswith("@" + domain) for e in emails):
        return True
    return (
        session.scalar(
            select(InboundMail.id)
            .where(InboundMail.ticket_id == ticket.id, InboundMail.from_address == address)
            .limit(1)
        )
        is not None
    )


def _thread_ticket(session: Session, mail: parse.ParsedMail) -> Ticket | None:
    """The ticket this mail continues, if it provably does (see kefu.mail.threads)."""
    sender = mail.from_address or ""
    for mid in mail.thread_ids:
        ticket_id = threads.ticket_of_message_id(mid)
        if ticket_id is not None and (ticket := session.get(Ticket, ticket_id)) is not None:
            return ticket
    ticket_id = threads.ticket_of_recipients(mail.recipients)
    if ticket_id is not None and (ticket := session.get(Ticket, ticket_id)) is not None:
        return ticket
    if mail.unauthenticated:
        return None  # the sender is not who they say: only a signed thread counts
    if mail.thread_ids:
        earlier = session.execute(
            select(InboundMail.ticket_id, InboundMail.from_address)
            .where(
                InboundMail.message_key.in_(mail.thread_ids[:50]),
                InboundMail.ticket_id.is_not(None),
            )
            .order_by(InboundMail.id.desc())
        ).all()
        for ticket_id, from_address in earlier:
            ticket = session.get(Ticket, ticket_id)
            if ticket is not None and (
                from_address == sender or _sender_belongs(session, ticket, sender)
            ):
                return ticket
    number = threads.number_in_subject(mail.subject)
    if number is not None:
        year, ticket_id = number
        ticket = session.get(Ticket, ticket_id)
        if (
            ticket is not None
            and ticket.created_at.year == year
            and _sender_belongs(session, ticket, sender)
        ):
            return ticket
    return None


def _with_placeholders(body: str) -> str:
    return CID_RE.sub(lambda m: f"{m.group(1)}{CID_PLACEHOLDER}{m.group(2)}{m.group(1)}", body)


def _keep_attachments(
    session: Session, viewer: Viewer, ticket: Ticket, mail: parse.ParsedMail
) -> tuple[dict[str, int], list[str]]:
    """Attachments and inline images through the same checks as uploads; the refused ones
    are named on the ticket's timeline (the raw mail stays on the server)."""
    by_cid: dict[str, int] = {}
    refused: list[str] = []
    for part in mail.attachments:
        try:
            row = attachments.add_attachment(session, viewer, ticket.id, part.filename, part.data)
        except Invalid as exc:
            error = exc.errors[0] if exc.errors else None
            refused.append(part.filename)
            tickets.event(
                session,
                ticket,
                "attachment_refused",
                viewer.username,
                filename=attachments._clean_name(part.filename),
                reason=error.message if error else exc.message,
                params={k: str(v) for k, v in (error.params if error else {}).items()},
            )
            continue
        if part.content_id:
            by_cid[part.content_id] = row.id
    return by_cid, refused


def _link_inline(ticket: Ticket, body: str, by_cid: dict[str, int]) -> str:
    def link(m: re.Match[str]) -> str:
        aid = by_cid.get(m.group(1))
        return f"/tickets/{ticket.id}/attachments/{aid}" if aid else ""

    return re.sub(re.escape(CID_PLACEHOLDER) + r"([^\"'\s<>]+)", link, body)


def _new_ticket(
    session: Session,
    viewer: Viewer,
    box: Mailbox,
    mail: parse.ParsedMail,
    customer_id: int,
    contact_id: int | None,
    follows: Ticket | None = None,
) -> Ticket:
    data = TicketCreate(
        customer_id=customer_id,
        contact_id=contact_id,
        category_code=box.category_code,
        subject=_subject(mail.subject),
        description=_with_placeholders(mail.body_html)[:100_000],
        channel="email",
    )
    started = now()
    ticket = tickets.open_ticket(
        session,
        viewer,
        data,
        channel="email",
        idempotency_key=f"email:{mail.message_key}"[:300],
    )
    fresh = ticket.created_at >= started  # not an earlier ticket found by its key
    by_cid, _refused = _keep_attachments(session, _mail_viewer(mail.from_address), ticket, mail)
    # The "created" event open_ticket just wrote is in this session: no query for it.
    created = next(
        (
            o
            for o in [*session.new, *session.identity_map.values()]
            if isinstance(o, TicketEvent) and o.ticket_id == ticket.id and o.kind == "created"
        ),
        None,
    )
    if created is None:  # written in bulk by the intake (not an object of this session)
        created = session.scalar(
            select(TicketEvent).where(
                TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "created"
            )
        )
    ticket.description = _link_inline(ticket, ticket.description, by_cid)
    # The customer hears that their mail arrived (an outbox row: sent after commit, by
    # the email channel, never for auto-replies since those make no ticket).
    notify(
        session,
        "ticket.acknowledged",
        f"customer:{ticket.customer_id}",
        {"ticket_id": ticket.id, "number": ticket.number, "subject": ticket.subject},
        f"ticket.acknowledged:{ticket.id}",
        known_new=fresh,
    )
    if created is not None:
        created.body = ticket.description
        created.data = {
            **created.data,
            "from": mail.from_address,
            "message_id": mail.message_key,
            "mailbox_id": box.id,
            # A follow-up of a closed ticket names it here (custom fields are the admin's).
            **({"follows": follows.number, "follows_id": follows.id} if follows else {}),
        }
    return ticket


def _reply(
    session: Session, viewer: Viewer, ticket: Ticket, mail: parse.ParsedMail, how: str
) -> TicketEvent:
    ticket = tickets.get_ticket(session, viewer, ticket.id, for_update=True)
    row = tickets.customer_reply(
        session, ticket, (mail.from_address or "email")[:100], _with_placeholders(mail.reply_html)
    )
    session.flush()
    by_cid, _refused = _keep_attachments(session, viewer, ticket, mail)
    row.body = _link_inline(ticket, row.body, by_cid)
    row.data = {**row.data, "from": mail.from_address, "message_id": mail.message_key, "via": how}
    record(
        session,
        viewer,
        "ticket.customer_reply",
        "ticket",
        ticket.id,
        {"message_id": {"before": None, "after": mail.message_key}},
    )
    return row


def _takes_replies(ticket: Ticket) -> bool:
    if ticket.state == "closed":
        return False
    return ticket.state != "resolved" or policy.may_reopen(ticket.resolved_at, now())


def receive(
    session: Session,
    box: Mailbox,
    raw: bytes,
    *,
    uid: int | None = None,
    uidvalidity: int | None = None,
    row: InboundMail | None = None,
) -> InboundMail:
    """Take in one raw mail. A mail seen before (same Message-ID) changes nothing; `row` is
    given when a person asked for another try of a held mail."""
    key, _ = parse.header_key(raw)
    if row is None:
        existing = find_mail(session, key)
        if existing is not None:
            return existing
        row = InboundMail(
            mailbox_id=box.id,
            message_key=key,
            uid=uid,
            uidvalidity=uidvalidity,
            size=len(raw),
            status="quarantined",  # until we know better; all of it rolls back on an error
            reason="error",
            received_at=now(),
        )
        session.add(row)
    row.updated_at = now()
    try:
        mail = parse.parse(raw, key)
    except parse.MailRefused as refused:
        _hold(row, raw, "quarantined", refused.reason, refused.detail)
        session.flush()
        return row
    row.from_address = mail.from_address
    row.subject = _subject(mail.subject)
    row.size = len(raw)
    row.detail = "; ".join(mail.notes)[:500] or None
    if mail.auto is not None:
        row.status, row.reason = "ignored", mail.auto
        session.flush()
        return row
    if mail.from_address is None:
        _hold(row, raw, "quarantined", "no_sender", "no usable From address")
        session.flush()
        return row
    viewer = _mail_viewer(mail.from_address)
    ticket = _thread_ticket(session, mail)
    if ticket is not None and _takes_replies(ticket):
        _reply(session, viewer, ticket, mail, "thread")
        row.status, row.reason, row.ticket_id = "reply", None, ticket.id
    elif ticket is not None:
        # A reply to a closed ticket opens a new one that names it, for the same customer.
        contact = _contact_of(session, ticket.customer_id, mail.from_address)
        new = _new_ticket(session, viewer, box, mail, ticket.customer_id, contact, ticket)
        row.status, row.reason, row.ticket_id = "ticket", None, new.id
    else:
        match = Match(None, None, "unauthenticated") if mail.unauthenticated else None
        match = match or match_customer(session, mail.from_address)
        if match.customer_id is None:
            _hold(row, raw, "unknown_sender", match.reason or "unknown_sender")
            session.flush()
            return row
        new = _new_ticket(session, viewer, box, mail, match.customer_id, match.contact_id)
        row.status, row.reason, row.ticket_id = "ticket", None, new.id
    if row.raw_sha256:
        _forget_raw(session, row)
    session.flush()
    return row


def _contact_of(session: Session, customer_id: int, address: str) -> int | None:
    return session.scalar(
        select(Contact.id)
        .where(Contact.customer_id == customer_id, func.lower(Contact.email) == address)
        .order_by(Contact.id)
        .limit(1)
    )


# --- what people do with held mails ---------------------------------------------------------


def get_mail(
    session: Session, viewer: Viewer, mail_id: int, for_update: bool = False
) -> InboundMail:
    return get_visible(session, InboundMail, mail_id, viewer, for_update=for_update)


def _may_handle(viewer: Viewer, row: InboundMail) -> None:
    if row.status == "unknown_sender":
        if not viewer.has_role("agent", "supervisor", "manager"):
            raise Forbidden()
    elif not viewer.is_admin:
        raise Forbidden(N_("Only administrators may handle quarantined mail."))


def retry_mail(session: Session, viewer: Viewer, mail_id: int) -> InboundMail:
    """Queue a held mail for another try by the worker (after a fix: a new contact, a
    raised limit)."""
    row = get_mail(session, viewer, mail_id, for_update=True)
    _may_handle(viewer, row)
    if row.status not in ("quarantined", "unknown_sender"):
        raise Invalid.field("status", N_("Only held mail can be tried again."))
    before = row.status
    row.status = "retry"
    row.updated_at = now()
    record(
        session,
        viewer,
        "mail.retry",
        "inbound_mail",
        row.id,
        {"status": {"before": before, "after": "retry"}},
    )
    session.flush()
    return row


def drop_mail(session: Session, viewer: Viewer, mail_id: int) -> InboundMail:
    row = get_mail(session, viewer, mail_id, for_update=True)
    _may_handle(viewer, row)
    if row.status not in ("quarantined", "unknown_sender", "retry"):
        raise Invalid.field("status", N_("Only held mail can be dropped."))
    before = row.status
    row.status = "dropped"
    row.updated_at = now()
    _forget_raw(session, row)
    record(
        session,
        viewer,
        "mail.drop",
        "inbound_mail",
        row.id,
        {"status": {"before": before, "after": "dropped"}},
    )
    session.flush()
    return row


def assign_mail(session: Session, viewer: Viewer, mail_id: int, data: AssignIn) -> Ticket:
    """A person names the customer of a mail from an unknown sender: it becomes a ticket."""
    row = get_mail(session, viewer, mail_id, for_update=True)
    if row.status != "unknown_sender":
        raise Invalid.field("status", N_("Only mail from an unknown sender can be assigned."))
    _may_handle(viewer, row)
    raw = raw_of(row)
    if raw is None:
        raise Invalid.field("status", N_("The mail's content is no longer kept."))
    box = session.get(Mailbox, row.mailbox_id)
    if box is None:
        raise NotFound()
    mail = parse.parse(raw)
    ticket = _new_ticket(session, viewer, box, mail, data.customer_id, data.contact_id)
    row.status, row.reason, row.ticket_id = "ticket", None, ticket.id
    row.updated_at = now()
    record(
        session,
        viewer,
        "mail.assign",
        "inbound_mail",
        row.id,
        {"ticket_id": {"before": None, "after": ticket.id}},
    )
    _forget_raw(session, row)
    session.flush()
    return ticket


def retries(session: Session, mailbox_id: int, limit: int = 50) -> list[InboundMail]:
    return list(
        session.scalars(
            select(InboundMail)
            .where(InboundMail.mailbox_id == mailbox_id, InboundMail.status == "retry")
            .order_by(InboundMail.id)
            .limit(limit)
        )
    )
