"""Email in: fetch every active mailbox over IMAP and take each new mail in.

The mails of one FETCH (at most CHUNK) are taken in in one transaction, each in a savepoint
of its own; only after it commits are they flagged \\Seen on the server. A crash in between
leaves them unseen, and the next run finds their Message-IDs already taken in and only flags
them — nothing is lost and nothing is made twice. A mail whose intake
fails is quarantined with the error, so the rest of the mailbox keeps flowing. A mailbox is
leased by one worker at a time (kefu.mail.service.claim_mailboxes).
"""

from __future__ import annotations

import imaplib
import logging
import ssl
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from kefu.config import get_settings
from kefu.db import unit_of_work
from kefu.mail import imap, parse
from kefu.mail import service as mail
from kefu.mail.models import InboundMail, Mailbox

log = logging.getLogger("kefu.mail")
LEASE = timedelta(minutes=10)
CHUNK = 25  # mails downloaded per FETCH


def run(factory: sessionmaker[Session]) -> dict[str, int]:
    with unit_of_work(factory) as session:
        boxes = mail.claim_mailboxes(session, LEASE)
    totals = {"mailboxes": len(boxes), "taken": 0, "failed_mailboxes": 0}
    for access in boxes:
        error = None
        try:
            totals["taken"] += fetch_mailbox(factory, access)
        except (TimeoutError, imaplib.IMAP4.error, imap.ImapError, OSError, ssl.SSLError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            totals["failed_mailboxes"] += 1
            log.warning("mailbox %s: %s", access.mailbox_id, error)
        finally:
            with unit_of_work(factory) as session:
                mail.release_mailbox(session, access.mailbox_id, error)
    return totals


def _take(
    factory: sessionmaker[Session],
    mailbox_id: int,
    raw: bytes,
    uid: int | None,
    uidvalidity: int | None,
    row_id: int | None = None,
) -> bool:
    """One mail in one transaction; True when it is recorded (so it may be flagged seen)."""
    try:
        with unit_of_work(factory) as session:
            box = session.get(Mailbox, mailbox_id)
            assert box is not None
            row = session.get(InboundMail, row_id) if row_id else None
            mail.receive(session, box, raw, uid=uid, uidvalidity=uidvalidity, row=row)
        return True
    except Exception as exc:
        if isinstance(exc, IntegrityError) and _known(factory, raw):
            return True  # another worker took the same mail (copied to two mailboxes) meanwhile
        log.exception("mail uid %s of mailbox %s failed", uid, mailbox_id)
        try:
            with unit_of_work(factory) as session:
                mail.hold_failed(
                    session, mailbox_id, raw, uid, uidvalidity, f"{type(exc).__name__}: {exc}"
                )
            return True
        except Exception:
            log.exception("could not quarantine uid %s of mailbox %s", uid, mailbox_id)
            return False


def _take_chunk(
    factory: sessionmaker[Session],
    mailbox_id: int,
    items: list[tuple[int, bytes]],
    uidvalidity: int | None,
) -> list[int]:
    """The mails of one FETCH in one transaction, each in a savepoint of its own (fewer
    commits, one session); a mail that fails rolls back its savepoint alone and is then
    tried, and if need be quarantined, on its own. Returns the UIDs recorded."""
    done: list[int] = []
    failed: list[tuple[int, bytes]] = []
    try:
        with unit_of_work(factory) as session:
            box = session.get(Mailbox, mailbox_id)
            assert box is not None
            for uid, raw in items:
                try:
                    with session.begin_nested():
                        mail.receive(session, box, raw, uid=uid, uidvalidity=uidvalidity)
                    done.append(uid)
                except Exception:
                    failed.append((uid, raw))
    except Exception:
        log.exception("a chunk of mailbox %s failed; taking its mails one by one", mailbox_id)
        done, failed = [], list(items)
    for uid, raw in failed:
        if _take(factory, mailbox_id, raw, uid, uidvalidity):
            done.append(uid)
    return done


def _known(factory: sessionmaker[Session], raw: bytes) -> bool:
    with unit_of_work(factory, write=False) as session:
        return mail.find_mail(session, parse.header_key(raw)[0]) is not None


def fetch_mailbox(factory: sessionmaker[Session], access: mail.Access) -> int:
    settings = get_settings()
    limit = int(settings.mail_max_mb * 1024 * 1024)
    taken = 0
    with imap.connect(access) as client:
        validity = client.uidvalidity
        with unit_of_work(factory, write=False) as session:
            again = [
                (r.id, r.uid, r.uidvalidity, mail.raw_of(r))
                for r in mail.retries(session, access.mailbox_id)
            ]
        for row_id, uid, row_validity, raw in again:
            if raw is None and uid is not None and row_validity == validity:
                size = client.sizes([uid]).get(uid, 0)
                raw = client.fetch([uid]).get(uid) if size <= limit else None
            if raw is None:
                with unit_of_work(factory) as session:
                    row = session.get(InboundMail, row_id)
                    if row is not None:
                        row.status = "quarantined"
                        row.detail = "still too large, or no longer on the server"
                continue
            taken += _take(factory, access.mailbox_id, raw, uid, validity, row_id)

        uids = client.unseen()[: settings.mail_fetch_batch]
        sizes = client.sizes(uids)
        for start in range(0, len(uids), CHUNK):
            chunk = uids[start : start + CHUNK]
            done: list[int] = []
            large = [u for u in chunk if sizes.get(u, 0) > limit]
            if large:
                headers = client.fetch(large, "BODY.PEEK[HEADER]")
                for uid in large:
                    with unit_of_work(factory) as session:
                        mail.hold_oversized(
                            session,
                            access.mailbox_id,
                            uid,
                            validity,
                            sizes[uid],
                            headers.get(uid, b""),
                        )
                    done.append(uid)
            bodies = client.fetch([u for u in chunk if u not in large])
            recorded = _take_chunk(factory, access.mailbox_id, sorted(bodies.items()), validity)
            taken += len(recorded)
            done += recorded
            client.mark_seen(done)  # only now: every one of them is committed
    return taken
