"""Read-side selects: mailboxes and the intake log (the unknown-sender queue, quarantine)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from kefu.mail.models import WAITING, InboundMail, Mailbox
from kefu.scope import Viewer, visible


def mailboxes(viewer: Viewer) -> Select[Any]:
    return visible(select(Mailbox), Mailbox, viewer)


def inbound(
    viewer: Viewer,
    *,
    status: str | None = None,
    mailbox_id: int | None = None,
    held_only: bool = False,
) -> Select[Any]:
    stmt = visible(select(InboundMail), InboundMail, viewer)
    if status:
        stmt = stmt.where(InboundMail.status == status)
    if held_only:
        stmt = stmt.where(InboundMail.status.in_(WAITING))
    if mailbox_id is not None:
        stmt = stmt.where(InboundMail.mailbox_id == mailbox_id)
    return stmt
