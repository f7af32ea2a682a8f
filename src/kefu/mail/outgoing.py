"""The "email" channel of the delivery loop (kefu.channels): public replies, acknowledgements
and resolutions to the customer, notifications to staff who chose email.

`plan` (inside the fan-out transaction) decides the recipient and renders the whole message
— wording in the contact's language, threading headers, the signed reply address — into
the delivery's data, so `deliver` only builds the MIME message and hands it to SMTP
(kefu.mail.smtp). A retry sends exactly the same message, with the same Message-ID.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kefu.channels.base import (
    Context,
    Job,
    PermanentError,
    Planned,
    PlannedEvent,
    RetryableError,
)
from kefu.channels.topics import ESCALATIONS, label
from kefu.config import get_settings
from kefu.customers.models import Contact, Customer
from kefu.i18n import translations
from kefu.mail import compose, smtp, templates, threads
from kefu.mail.models import InboundMail, Mailbox
from kefu.staff.models import Staff
from kefu.tickets.models import Ticket, TicketEvent
from kefu.tickets.service import clean_html
from kefu.units.models import Unit

# What reaches the customer by mail, and with which wording.
CUSTOMER_TOPICS = {
    "ticket.acknowledged": "ticket.acknowledged",
    "ticket.reply": "ticket.reply",
    "ticket.resolved": "ticket.resolved",
}
# Mail to one contact about no ticket.
CONTACT_TOPICS = {"portal.invitation": "portal.invitation"}
AUTO = {"ticket.acknowledged", "ticket.resolved", "staff.notification", "portal.invitation"}


def html_to_text(body: str) -> str:
    text = re.sub(r"(?i)<br\s*/?>|</p\s*>|</div\s*>|</li\s*>", "\n", body)
    text = re.sub(r"<[^>]*>", "", text)
    return re.sub(r"\n{3,}", "\n\n", html.unescape(text)).strip()


def _render(template: str, values: dict[str, str], body_html: str | None) -> tuple[str, str]:
    """(text, html) of a body template; {body} is the reply's sanitised HTML in the HTML
    part and its text in the text part; every other value is escaped."""
    text = templates.fill(template, values)
    pieces = template.split("{body}")
    html_part = (clean_html(body_html) if body_html is not None else "").join(
        compose.text_to_html(templates.fill(p, {**values, "body": ""})) for p in pieces
    )
    return text, f"<div>{html_part}</div>"


def _domain(addr: str) -> str:
    return addr.rpartition("@")[2] or "kefu.invalid"


def _settings_from() -> str | None:
    return get_settings().mail_from or None


class EmailChannel:
    name = "email"
    audiences = frozenset({"staff", "customer"})
    default_topics: frozenset[str] | None = ESCALATIONS  # staff opt in to the rest

    def plan(self, session: Session, events: Sequence[PlannedEvent]) -> Iterable[Planned]:
        if not smtp.configured():
            return []
        wanted = [pe for pe in events if any(self.name in r.channels for r in pe.recipients)]
        ticket_ids = {
            pe.event.payload["ticket_id"]
            for pe in wanted
            if isinstance(pe.event.payload.get("ticket_id"), int)
        }
        contact_ids = {r.id for pe in wanted for r in pe.recipients if r.kind == "contact"}
        if not ticket_ids and not contact_ids:
            return []
        tickets = {
            t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(ticket_ids)))
        }
        contacts = {
            c.id: c
            for c in session.scalars(
                select(Contact).where(
                    Contact.id.in_(
                        {t.contact_id for t in tickets.values() if t.contact_id} | contact_ids
                    )
                )
            )
        }
        customers = dict(
            session.execute(
                select(Customer.id, Customer.name).where(
                    Customer.id.in_({t.customer_id for t in tickets.values()})
                )
            ).all()
        )
        units = dict(
            session.execute(
                select(Unit.id, Unit.name).where(
                    Unit.id.in_({t.handling_unit_id for t in tickets.values()})
                )
            ).all()
        )
        inbound: dict[int, list[tuple[str, str | None, int]]] = defaultdict(list)
        for tid, key, sender, box_id in session.execute(
            select(
                InboundMail.ticket_id,
                InboundMail.message_key,
                InboundMail.from_address,
                InboundMail.mailbox_id,
            )
            .where(InboundMail.ticket_id.in_(ticket_ids))
            .order_by(InboundMail.id)
        ):
            if tid is not None:
                inbound[tid].append((key, sender, box_id))
        boxes = list(
            session.scalars(select(Mailbox).where(Mailbox.is_active.is_(True)).order_by(Mailbox.id))
        )
        staff_ids = {r.id for pe in wanted for r in pe.recipients if r.kind == "staff"}
        staff = {s.id: s for s in session.scalars(select(Staff).where(Staff.id.in_(staff_ids)))}
        out = []
        for pe in wanted:
            event = pe.event
            ticket = tickets.get(event.payload.get("ticket_id", -1))
            if ticket is None:
                out += self._plan_for_contacts(session, pe, contacts, boxes)
                continue
            mails = inbound.get(ticket.id, [])
            box = self._mailbox(ticket, mails, boxes)
            sender = (f"{box.name} <{box.address}>" if box else None) or _settings_from()
            if sender is None:
                continue
            contact = contacts.get(ticket.contact_id or -1)
            for r in pe.recipients:
                if self.name not in r.channels:
                    continue
                if r.kind == "customer":
                    kind = CUSTOMER_TOPICS.get(event.topic)
                    to = self._customer_address(ticket, contact, mails)
                    locale = contact.locale if contact else get_settings().default_locale
                elif r.kind == "contact":
                    kind = CUSTOMER_TOPICS.get(event.topic)
                    one = contacts.get(r.id)
                    to = one.email if one else None
                    locale = one.locale if one else get_settings().default_locale
                else:
                    kind = "staff.notification"
                    person = staff.get(r.id)
                    to = person.email if person and person.email else None
                    locale = r.locale
                if kind is None or not to:
                    continue
                try:
                    to = compose.address(to)
                except compose.BadHeader:
                    continue
                values = {
                    "number": ticket.number,
                    "subject": compose.one_line(ticket.subject, 200),
                    "contact": contact.name if contact else customers.get(ticket.customer_id, ""),
                    "customer": customers.get(ticket.customer_id, ""),
                    "unit": units.get(ticket.handling_unit_id, ""),
                    "topic": translations(locale).gettext(label(event.topic)),
                }
                body_html = (
                    self._reply_body(session, ticket, event.payload)
                    if kind == "ticket.reply"
                    else None
                )
                if body_html is not None:
                    values["body"] = html_to_text(body_html)
                wording = templates.wording(session, kind, locale)
                text, html_part = _render(wording.body, values, body_html)
                from_addr = compose.envelope_from({"from": sender})
                nonce = f"o{event.id}{r.kind[0]}{r.id}"
                data: dict[str, Any] = {
                    "from": sender,
                    "to": [to],
                    "subject": templates.fill(wording.subject, values),
                    "text": text,
                    "html": html_part,
                    "message_id": threads.message_id(ticket.id, _domain(from_addr), nonce),
                    "in_reply_to": mails[-1][0] if mails else None,
                    "references": [m[0] for m in mails][-10:],
                    "ticket_id": ticket.id,
                    "auto": kind in AUTO,
                    "locale": locale,
                }
                if box is not None and r.kind in ("customer", "contact"):
                    data["reply_to"] = threads.reply_address(box.address, ticket.id)
                target = f"mail:{hashlib.sha256(to.encode()).hexdigest()[:16]}:{to}"[:200]
                out.append(Planned(event.id, target, data))
        return out

    def _plan_for_contacts(
        self,
        session: Session,
        pe: PlannedEvent,
        contacts: dict[int, Contact],
        boxes: list[Mailbox],
    ) -> list[Planned]:
        """Mail to one contact that concerns no ticket (the portal invitation)."""
        event = pe.event
        kind = CONTACT_TOPICS.get(event.topic)
        if kind is None:
            return []
        out = []
        for r in pe.recipients:
            contact = contacts.get(r.id) if r.kind == "contact" else None
            if self.name not in r.channels or contact is None or not contact.email:
                continue
            box = next((b for b in boxes if b.unit_id == pe.unit_id), boxes[0] if boxes else None)
            sender = _settings_from() or (f"{box.name} <{box.address}>" if box else None)
            if sender is None:
                continue
            try:
                to = compose.address(contact.email)
                from_addr = compose.envelope_from({"from": sender})
            except compose.BadHeader:
                continue
            locale = contact.locale
            values = {
                "contact": contact.name,
                "customer": "",
                "unit": box.name if box else "",
                "url": str(event.payload.get("url", "")),
                "expires": str(event.payload.get("expires_at", ""))[:16].replace("T", " "),
                "topic": translations(locale).gettext(label(event.topic)),
            }
            wording = templates.wording(session, kind, locale)
            text, html_part = _render(wording.body, values, None)
            nonce = f"o{event.id}k{contact.id}"
            data: dict[str, Any] = {
                "from": sender,
                "to": [to],
                "subject": templates.fill(wording.subject, values),
                "text": text,
                "html": html_part,
                "message_id": f"kefu-{nonce}@{_domain(from_addr)}",
                "auto": True,
                "locale": locale,
            }
            target = f"mail:{hashlib.sha256(to.encode()).hexdigest()[:16]}:{to}"[:200]
            out.append(Planned(event.id, target, data))
        return out

    @staticmethod
    def _mailbox(
        ticket: Ticket, mails: list[tuple[str, str | None, int]], boxes: list[Mailbox]
    ) -> Mailbox | None:
        by_id = {b.id: b for b in boxes}
        for _key, _sender, box_id in reversed(mails):
            if box_id in by_id:
                return by_id[box_id]
        for unit_id in (ticket.handling_unit_id, ticket.owning_unit_id):
            for b in boxes:
                if b.unit_id == unit_id:
                    return b
        return boxes[0] if boxes and not get_settings().mail_from else None

    @staticmethod
    def _customer_address(
        ticket: Ticket, contact: Contact | None, mails: list[tuple[str, str | None, int]]
    ) -> str | None:
        """Who wrote last by mail on this ticket; else its contact, when the ticket came by
        mail or the contact prefers mail."""
        for _key, sender, _box in reversed(mails):
            if sender:
                return sender
        if (
            contact
            and contact.email
            and (ticket.channel == "email" or contact.preferred_channel == "email")
        ):
            return contact.email
        return None

    @staticmethod
    def _reply_body(session: Session, ticket: Ticket, payload: dict[str, Any]) -> str:
        event_id = payload.get("event_id")
        stmt = select(TicketEvent.body).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "reply"
        )
        if isinstance(event_id, int):
            stmt = stmt.where(TicketEvent.id == event_id)
        return session.scalar(stmt.order_by(TicketEvent.id.desc()).limit(1)) or ""

    def deliver(self, job: Job, ctx: Context) -> str:
        data = job.data or {}
        try:
            msg = compose.build(data)
            sender = compose.envelope_from(data)
        except (compose.BadHeader, KeyError) as exc:
            raise PermanentError(f"unsendable: {exc}") from exc
        try:
            return smtp.send(msg, sender, list(data["to"]))
        except smtp.SendFailed as exc:
            if exc.permanent:
                raise PermanentError(str(exc)) from exc
            raise RetryableError(str(exc), unreachable=exc.unreachable) from exc


channel = EmailChannel()
