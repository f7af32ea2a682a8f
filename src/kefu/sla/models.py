from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kefu.clock import now
from kefu.db import Base, UTCDateTime


class BusinessCalendar(Base):
    """Working time of one or more units: zone, weekly hours, holiday provider, overrides."""

    __tablename__ = "calendars"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    country: Mapped[str] = mapped_column(String(2), default="CN")
    # {"0": [["08:30", "12:00"], ["13:30", "17:30"]], …} — Monday is "0".
    hours: Mapped[dict[str, Any]] = mapped_column(JSON)
    is_default: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumped on every change
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    overrides: Mapped[list[CalendarOverride]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="CalendarOverride.day"
    )


class CalendarOverride(Base):
    """A unit's own extra closed day (no hours) or open day (hours) — wins over holidays."""

    __tablename__ = "calendar_overrides"
    __table_args__ = (UniqueConstraint("calendar_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    hours: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(String(200), default="")
