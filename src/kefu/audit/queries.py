"""Reading the audit log (admins only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from kefu.audit.models import AuditEntry
from kefu.errors import NotFound
from kefu.scope import Viewer


def audit_entries(
    viewer: Viewer,
    *,
    actor: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select[Any]:
    if not viewer.is_admin:
        # The log shows every unit's changes: it is an admin's page; others learn nothing.
        raise NotFound()
    stmt = select(AuditEntry)
    if actor:
        stmt = stmt.where(AuditEntry.actor_name == actor)
    if action:
        stmt = stmt.where(AuditEntry.action.startswith(action, autoescape=True))
    if object_type:
        stmt = stmt.where(AuditEntry.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEntry.object_id == object_id)
    if since:
        stmt = stmt.where(AuditEntry.at >= since)
    if until:
        stmt = stmt.where(AuditEntry.at < until)
    return stmt
