from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, UniqueConstraint, false, select
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from kefu import tree
from kefu.clock import now
from kefu.db import Base, UTCDateTime
from kefu.scope import Viewer, in_subtree


def new_stamp() -> str:
    return uuid4().hex


class BusinessCalendar(Base):
    """Working time of one or more units: zone, weekly hours, holiday provider, overrides."""

    __tablename__ = "calendars"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    country: Mapped[str] = mapped_column(String(2), default="CN")
    # {"0": [["08:30", "12:00"], ["13:30", "17:30"]], …} — Monday is "0"; an end of
    # "00:00" is midnight at the end of the day.
    hours: Mapped[dict[str, Any]] = mapped_column(JSON)
    always_open: Mapped[bool] = mapped_column(default=False, server_default=false())  # 7×24
    is_default: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumped on every change
    # A random token renewed with every change (see touch()): compiled calendars are cached
    # by (id, version, stamp), which no other calendar can share — not one that got this id
    # again after a delete, nor a change that was rolled back after it was cached.
    stamp: Mapped[str] = mapped_column(String(32), default=lambda: new_stamp(), server_default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    overrides: Mapped[list[CalendarOverride]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="CalendarOverride.day"
    )

    def touch(self) -> None:
        """Mark a change: a new version (for optimistic locking) and a new stamp."""
        self.version += 1
        self.stamp = new_stamp()

    @classmethod
    def __scope__(cls, viewer: Viewer) -> ColumnElement[bool]:
        """Staff see the default calendar and the calendars of the units they see or work
        under (their own unit's ancestors): the ones that govern their work."""
        from kefu.units.models import Unit  # the tree lives in units; this only reads it

        above = tree.ancestor_ids(viewer.unit_path) if viewer.unit_path else []
        governing = select(Unit.calendar_id).where(
            Unit.calendar_id.is_not(None), in_subtree(Unit.path, viewer) | Unit.id.in_(above)
        )
        return cls.is_default.is_(True) | cls.id.in_(governing)


class CalendarOverride(Base):
    """A unit's own extra closed day (no hours) or open day (hours) — wins over holidays."""

    __tablename__ = "calendar_overrides"
    __table_args__ = (UniqueConstraint("calendar_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    hours: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(String(200), default="")
