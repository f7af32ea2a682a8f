"""Outgoing mail as bytes on the wire: headers that keep the thread together in the
customer's mail client, and that no value can break out of (header injection)."""

from __future__ import annotations

import html
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any

from kefu.clock import now
from kefu.mail.parse import LOOP_HEADER

CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
ADDRESS = re.compile(r"^[^@\s<>\"',;:\\]+@[A-Za-z0-9.\-]+\.[A-Za-z0-9\-]+$")
MSGID = re.compile(r"^[^<>\s]{1,250}$")


class BadHeader(ValueError):
    pass


def one_line(value: str, limit: int = 998) -> str:
    """A header value on one line: CR, LF and other control characters become spaces."""
    return " ".join(CONTROL.sub(" ", value).split())[:limit]


def address(value: str) -> str:
    """A bare address, checked; anything that could smuggle a header or a second
    recipient is refused."""
    addr = value.strip()
    if not ADDRESS.match(addr):
        raise BadHeader(f"not an address: {addr[:60]!r}")
    return addr


def mailbox(value: str) -> str:
    """'Name <addr>' with the name made safe and encoded as the policy needs."""
    name, addr = parseaddr(one_line(value))
    return formataddr((one_line(name, 100), address(addr))) if name else address(addr)


def _msgid(value: str) -> str:
    value = value.strip().strip("<>")
    if not MSGID.match(value):
        raise BadHeader("bad message id")
    return f"<{value}>"


def text_to_html(text: str) -> str:
    return "<br>".join(html.escape(line) for line in text.split("\n"))


def build(data: dict[str, Any]) -> EmailMessage:
    """The message from a planned delivery's data (kefu.mail.outgoing)."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = mailbox(data["from"])
    msg["To"] = ", ".join(address(a) for a in data["to"])
    if data.get("reply_to"):
        msg["Reply-To"] = address(data["reply_to"])
    msg["Subject"] = one_line(data["subject"], 250)
    msg["Date"] = format_datetime(now())
    msg["Message-ID"] = _msgid(data["message_id"])
    if data.get("in_reply_to"):
        msg["In-Reply-To"] = _msgid(data["in_reply_to"])
    refs = [_msgid(r) for r in data.get("references") or []][-10:]
    if refs:
        msg["References"] = " ".join(refs)
    msg[LOOP_HEADER] = one_line(str(data.get("ticket_id") or "1"), 20)
    if data.get("auto"):
        # RFC 3834: a machine wrote this; polite autoresponders do not answer it.
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(data["text"], cte="base64" if not data["text"].isascii() else "7bit")
    msg.add_alternative(data["html"], subtype="html")
    return msg


def envelope_from(data: dict[str, Any]) -> str:
    _name, addr = parseaddr(data["from"])
    return address(addr)


__all__ = ["Address", "BadHeader", "address", "build", "envelope_from", "mailbox", "one_line"]
