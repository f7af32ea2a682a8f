"""Ticket attachments: checked (size, kind by content, name agrees with content), stored by
content hash under the data dir, served only after the ticket's visibility check."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from kefu.audit.service import record
from kefu.clock import now
from kefu.config import get_settings
from kefu.errors import Invalid, NotFound
from kefu.i18n import N_
from kefu.scope import Viewer
from kefu.tickets import filetypes
from kefu.tickets.models import TicketAttachment
from kefu.tickets.service import event, get_ticket

SNIFF_BYTES = 4096


def max_bytes() -> int:
    return int(get_settings().attachment_max_mb * 1024 * 1024)


def _root() -> Path:
    return get_settings().data_dir / "attachments"


def path_of(sha256: str) -> Path:
    return _root() / sha256[:2] / sha256[2:4] / sha256


def _clean_name(filename: str) -> str:
    name = os.path.basename(filename.replace("\\", "/")).strip()
    name = re.sub(r"[\x00-\x1f\x7f]", "", name)
    return name[-200:] or "attachment"


def _store(data: bytes, sha: str) -> None:
    """Write once, atomically (a temporary file renamed into place)."""
    target = path_of(sha)
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_attachment(
    session: Session,
    viewer: Viewer,
    ticket_id: int,
    filename: str,
    data: bytes,
    *,
    public: bool = False,
) -> TicketAttachment:
    """A checked file on a ticket; `public` ones are shown to the customer in the portal."""
    ticket = get_ticket(session, viewer, ticket_id, for_update=True)
    name = _clean_name(filename)
    limit = max_bytes()
    if not data:
        raise Invalid.field("file", N_("The file is empty."))
    if len(data) > limit:
        raise Invalid.field(
            "file",
            N_("The file is larger than the limit of {limit} MB."),
            limit=get_settings().attachment_max_mb,
        )
    kind = filetypes.sniff(data[:SNIFF_BYTES], data)
    if kind is None or kind not in get_settings().attachment_kinds:
        raise Invalid.field("file", N_("This kind of file is not accepted."))
    if not filetypes.matches(kind, name):
        raise Invalid.field(
            "file",
            N_("The file's content does not match its name ({filename})."),
            filename=name,
        )
    sha = hashlib.sha256(data).hexdigest()
    _store(data, sha)  # before the row: a row never points at a missing file
    row = TicketAttachment(
        ticket_id=ticket.id,
        filename=name,
        kind=kind,
        content_type=filetypes.KINDS[kind][0],
        size=len(data),
        sha256=sha,
        uploaded_by=viewer.username,
        public=public,
        created_at=now(),
    )
    session.add(row)
    session.flush()
    event(
        session,
        ticket,
        "attachment",
        viewer.username,
        public=public,
        attachment_id=row.id,
        filename=name,
        size=len(data),
    )
    record(
        session,
        viewer,
        "ticket.attachment",
        "ticket",
        ticket.id,
        {
            "attachment": {"before": None, "after": name},
            "public": {"before": None, "after": public},
        },
    )
    return row


def attachments(session: Session, viewer: Viewer, ticket_id: int) -> list[TicketAttachment]:
    ticket = get_ticket(session, viewer, ticket_id)
    return list(
        session.scalars(
            select(TicketAttachment)
            .where(TicketAttachment.ticket_id == ticket.id)
            .order_by(TicketAttachment.id)
        )
    )


def open_attachment(
    session: Session, viewer: Viewer, ticket_id: int, attachment_id: int
) -> tuple[TicketAttachment, Path]:
    ticket = get_ticket(session, viewer, ticket_id)
    row = session.get(TicketAttachment, attachment_id)
    if row is None or row.ticket_id != ticket.id:
        raise NotFound()
    path = path_of(row.sha256)
    if not path.exists():
        raise NotFound()
    return row, path
