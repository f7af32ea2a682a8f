from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from kefu.api.v1.common import Cursor, Limit, PageOut
from kefu.api.v1.deps import CurrentViewer, Db
from kefu.audit.models import AuditEntry
from kefu.audit.queries import audit_entries
from kefu.pagination import paginate

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_id: int | None
    actor_name: str
    actor_contact_id: int | None = None  # a customer's contact (the portal), not staff
    channel: str
    request_id: str | None
    remote_addr: str | None
    action: str
    object_type: str
    object_id: str
    changes: dict[str, Any]


@router.get("", response_model=PageOut[AuditOut], summary="The audit log, newest first (admins)")
def list_audit(
    viewer: CurrentViewer,
    db: Db,
    limit: Limit = 50,
    cursor: Cursor = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    object_type: Annotated[str | None, Query(max_length=40)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> PageOut[AuditOut]:
    stmt = audit_entries(
        viewer,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        since=since,
        until=until,
    )
    page = paginate(db, stmt, key=AuditEntry.id, limit=limit, cursor=cursor, descending=True)
    return PageOut[AuditOut](
        items=[AuditOut.model_validate(e) for e in page.items], next_cursor=page.next_cursor
    )
