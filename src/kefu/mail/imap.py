"""A small IMAP client over imaplib: log in (TLS, STARTTLS, or plain for a local test
server), list unseen mails, their sizes, fetch without setting \\Seen, then flag \\Seen."""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress

from kefu.config import get_settings
from kefu.mail.service import Access

UID_RE = re.compile(rb"UID (\d+)")
SIZE_RE = re.compile(rb"RFC822\.SIZE (\d+)")


class ImapError(Exception):
    pass


def tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca_file = get_settings().mail_ca_file
    if ca_file:
        ctx.load_verify_locations(ca_file)
    return ctx


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _uid_set(uids: Iterable[int]) -> str:
    return ",".join(str(u) for u in uids)


class Client:
    def __init__(self, conn: imaplib.IMAP4, uidvalidity: int | None) -> None:
        self.conn = conn
        self.uidvalidity = uidvalidity

    def _ok(self, typ: str, data: list[object], what: str) -> list[object]:
        if typ != "OK":
            raise ImapError(f"{what}: {typ} {data!r}"[:300])
        return data

    def unseen(self) -> list[int]:
        data = self._ok(*self.conn.uid("SEARCH", None, "UNSEEN"), "SEARCH")  # type: ignore[arg-type]
        first = data[0] if data else b""
        return sorted(int(x) for x in first.split()) if isinstance(first, bytes) else []

    def sizes(self, uids: list[int]) -> dict[int, int]:
        if not uids:
            return {}
        data = self._ok(*self.conn.uid("FETCH", _uid_set(uids), "(RFC822.SIZE)"), "FETCH")  # type: ignore[arg-type]
        out = {}
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            if not isinstance(line, bytes):
                continue
            uid, size = UID_RE.search(line), SIZE_RE.search(line)
            if uid and size:
                out[int(uid.group(1))] = int(size.group(1))
        return out

    def fetch(self, uids: list[int], part: str = "BODY.PEEK[]") -> dict[int, bytes]:
        """The mails (or their headers) by UID, without setting \\Seen."""
        if not uids:
            return {}
        data = self._ok(*self.conn.uid("FETCH", _uid_set(uids), f"(UID {part})"), "FETCH")  # type: ignore[arg-type]
        out = {}
        for item in data:
            if isinstance(item, tuple) and len(item) == 2:
                uid = UID_RE.search(item[0])
                if uid:
                    out[int(uid.group(1))] = item[1]
        return out

    def mark_seen(self, uids: list[int]) -> None:
        if uids:
            self._ok(
                *self.conn.uid("STORE", _uid_set(uids), "+FLAGS.SILENT", "(\\Seen)"),  # type: ignore[arg-type]
                "STORE",
            )


@contextmanager
def connect(access: Access) -> Iterator[Client]:
    timeout = get_settings().mail_timeout_seconds
    conn: imaplib.IMAP4
    if access.security == "tls":
        conn = imaplib.IMAP4_SSL(
            access.host, access.port, ssl_context=tls_context(), timeout=timeout
        )
    else:
        conn = imaplib.IMAP4(access.host, access.port, timeout=timeout)
        if access.security == "starttls":
            conn.starttls(ssl_context=tls_context())
    try:
        conn.login(access.user, access.password)
        typ, data = conn.select(_quote(access.folder))
        if typ != "OK":
            raise ImapError(f"SELECT {access.folder}: {data!r}"[:300])
        _typ, validity = conn.response("UIDVALIDITY")
        uidvalidity = int(validity[0]) if validity and validity[0] else None
        yield Client(conn, uidvalidity)
    finally:
        with suppress(imaplib.IMAP4.error, OSError):
            conn.logout()
