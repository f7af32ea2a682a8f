from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kefu.clock import now
from kefu.db import Base, UTCDateTime

PRIORITIES = ("urgent", "high", "normal", "low")


class ServiceLevel(Base):
    """A level (5A … 1A); what it entitles lives in its current version."""

    __tablename__ = "service_levels"

    code: Mapped[str] = mapped_column(String(4), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, unique=True)  # 5 = 5A, highest
    current_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("service_level_versions.id", use_alter=True, name="fk_service_levels_current")
    )

    current: Mapped[ServiceLevelVersion | None] = relationship(
        lazy="raise", foreign_keys=[current_version_id], post_update=True
    )


class ServiceLevelVersion(Base):
    __tablename__ = "service_level_versions"
    __table_args__ = (UniqueConstraint("level_code", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    level_code: Mapped[str] = mapped_column(ForeignKey("service_levels.code"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    # Service content items: [{"key": "dedicated_manager", "value": true}, …]
    content: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    return_visit_hours: Mapped[int] = mapped_column(Integer)
    return_visit_method: Mapped[str] = mapped_column(String(10), default="phone")
    visit_frequency_days: Mapped[int | None] = mapped_column(Integer)
    is_24x7: Mapped[bool] = mapped_column(default=False)
    pause_on_hold: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    created_by: Mapped[str] = mapped_column(String(100), default="system")

    targets: Mapped[list[SlaTarget]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="SlaTarget.id"
    )


class SlaTarget(Base):
    """Minutes allowed per priority (and optionally per ticket category) in one version."""

    __tablename__ = "sla_targets"
    __table_args__ = (
        UniqueConstraint("version_id", "priority", "category_code"),
        CheckConstraint("priority IN ('urgent', 'high', 'normal', 'low')", name="priority"),
        CheckConstraint(
            "first_response_minutes > 0 AND next_response_minutes > 0 AND resolution_minutes > 0",
            name="positive",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("service_level_versions.id", ondelete="CASCADE"), index=True
    )
    priority: Mapped[str] = mapped_column(String(10))
    category_code: Mapped[str | None] = mapped_column(String(40))
    first_response_minutes: Mapped[int] = mapped_column(Integer)
    next_response_minutes: Mapped[int] = mapped_column(Integer)
    resolution_minutes: Mapped[int] = mapped_column(Integer)
