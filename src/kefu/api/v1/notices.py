"""The caller's in-app notices and notification preferences."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from kefu.api.v1.common import PageOut
from kefu.api.v1.deps import CurrentViewer, Db
from kefu.channels import service
from kefu.channels.models import Notice
from kefu.channels.schemas import NoticeOut, PreferenceIn, PreferenceOut
from kefu.channels.topics import notice_title

router = APIRouter(prefix="/notices", tags=["notices"])
preferences_router = APIRouter(prefix="/notification-preferences", tags=["notices"])


def out(n: Notice) -> NoticeOut:
    return NoticeOut(
        id=n.id,
        topic=n.topic,
        title=notice_title(n.topic, n.payload),
        payload=n.payload,
        created_at=n.created_at,
        read_at=n.read_at,
    )


@router.get("", response_model=PageOut[NoticeOut], summary="Your notices, newest first")
def list_notices(
    viewer: CurrentViewer,
    db: Db,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(pattern="^[0-9]{1,18}$")] = None,
) -> PageOut[NoticeOut]:
    rows = service.list_notices(
        db, viewer, unread=unread, before_id=int(cursor) if cursor else None, limit=limit + 1
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return PageOut[NoticeOut](
        items=[out(n) for n in rows], next_cursor=str(rows[-1].id) if more and rows else None
    )


@router.get("/unread-count", summary="How many of your notices are unread")
def unread_count(viewer: CurrentViewer, db: Db) -> dict[str, int]:
    return {"unread": service.unread_count(db, viewer)}


@router.post("/{notice_id}/read", response_model=NoticeOut, summary="Mark a notice read")
def mark_read(notice_id: int, viewer: CurrentViewer, db: Db) -> NoticeOut:
    return out(service.mark_read(db, viewer, notice_id))


@router.post("/read-all", summary="Mark every notice read")
def mark_all_read(viewer: CurrentViewer, db: Db) -> dict[str, int]:
    return {"marked": service.mark_all_read(db, viewer)}


@preferences_router.get(
    "", response_model=list[PreferenceOut], summary="Which event types reach you by which channel"
)
def get_preferences(viewer: CurrentViewer, db: Db) -> list[PreferenceOut]:
    return [
        PreferenceOut(topic=t, channel=c, enabled=e, default=d)
        for t, c, e, d in service.preferences(db, viewer)
    ]


@preferences_router.put("", response_model=list[PreferenceOut], summary="Change your choices")
def set_preferences(body: list[PreferenceIn], viewer: CurrentViewer, db: Db) -> list[PreferenceOut]:
    service.set_preferences(db, viewer, body)
    return get_preferences(viewer, db)
