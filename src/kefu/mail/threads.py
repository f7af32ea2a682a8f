"""What ties a mail to its ticket, and cannot be forged: Message-IDs of the mails Kefu sends
and plus-addresses for replies carry an HMAC of the ticket id under the secret key.

A mail whose In-Reply-To / References name one of our Message-IDs, or that was sent to a
ticket's reply address, belongs to that ticket whoever sent it (a colleague in copy, a
forwarded thread). A ticket number in the subject alone is guessable, so it counts only when
the sender belongs to the ticket's customer (checked by the service).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from kefu.config import get_settings, secret_key

OURS_RE = re.compile(r"^kefu\.(\d{1,12})\.([a-z0-9]{1,32})\.([0-9a-f]{16})@", re.IGNORECASE)
PLUS_RE = re.compile(r"\+t(\d{1,12})-([0-9a-f]{10})@", re.IGNORECASE)
NUMBER_RE = re.compile(r"\bT(\d{4})-(\d{7,12})\b")


def _sig(text: str, length: int) -> str:
    key = hashlib.sha256(b"kefu mail thread v1:" + secret_key(get_settings()).encode()).digest()
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:length]


def message_id(ticket_id: int, domain: str, nonce: str | None = None) -> str:
    """A Message-ID (without brackets) that names its ticket, signed."""
    nonce = nonce or secrets.token_hex(8)
    return f"kefu.{ticket_id}.{nonce}.{_sig(f'{ticket_id}.{nonce}', 16)}@{domain}"


def ticket_of_message_id(mid: str) -> int | None:
    m = OURS_RE.match(mid)
    if not m:
        return None
    ticket_id, nonce, sig = int(m.group(1)), m.group(2), m.group(3).lower()
    if not hmac.compare_digest(sig, _sig(f"{ticket_id}.{nonce}", 16)):
        return None
    return ticket_id


def reply_address(address: str, ticket_id: int) -> str:
    """The mailbox's address with a signed tag naming the ticket: local+tID-SIG@domain."""
    local, _, domain = address.rpartition("@")
    local = local.split("+", 1)[0]
    return f"{local}+t{ticket_id}-{_sig(f'reply.{ticket_id}', 10)}@{domain}"


def ticket_of_recipients(recipients: list[str]) -> int | None:
    for addr in recipients:
        m = PLUS_RE.search(addr)
        if m and hmac.compare_digest(m.group(2).lower(), _sig(f"reply.{m.group(1)}", 10)):
            return int(m.group(1))
    return None


def number_in_subject(subject: str) -> tuple[int, int] | None:
    """(year, ticket id) of a ticket number like T2026-0000123 in a subject."""
    m = NUMBER_RE.search(subject)
    return (int(m.group(1)), int(m.group(2))) if m else None
