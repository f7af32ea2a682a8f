"""Writing audit rows. Every action calls `record()` in its own transaction."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy.orm import Session

from kefu.audit.models import AuditEntry
from kefu.clock import now
from kefu.scope import Viewer


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in (sorted(value) if isinstance(value, set | frozenset) else value)]
    return value


def snapshot(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: _plain(getattr(obj, f)) for f in fields}


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {"before": x, "after": y}} for each field whose value changed."""
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(set(before) | set(after)):
        b, a = before.get(key), after.get(key)
        if b != a:
            out[key] = {"before": b, "after": a}
    return out


def record(
    session: Session,
    viewer: Viewer,
    action: str,
    obj_type: str,
    obj_id: Any,
    changes: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(**entry_values(viewer, action, obj_type, obj_id, changes))
    session.add(entry)
    return entry


def entry_values(
    viewer: Viewer,
    action: str,
    obj_type: str,
    obj_id: Any,
    changes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The columns of an audit entry (`record` adds it; a batch writes many at once)."""
    return {
        "at": now(),
        "actor_id": viewer.staff_id,
        "actor_name": viewer.username,
        "actor_contact_id": viewer.contact_id,
        "channel": viewer.channel,
        "request_id": viewer.request_id,
        "remote_addr": viewer.remote_addr,
        "action": action,
        "object_type": obj_type,
        "object_id": str(obj_id),
        "changes": changes or {},
    }
