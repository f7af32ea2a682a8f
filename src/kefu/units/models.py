from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, func, select
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from kefu.clock import now
from kefu.db import Base, BinaryString, UTCDateTime
from kefu.scope import Viewer, in_subtree

FUNCTIONS = ("service", "business", "marketing", "technical")


class Unit(Base):
    """A node of the service tree.

    `path` is the materialised path of ids ("/1/5/23/"): a subtree is one index range scan
    (`path >= p AND path < p'`), and moving a subtree is one UPDATE of the paths below it.
    """

    __tablename__ = "units"
    __table_args__ = (
        Index("ix_units_path", "path", unique=True),
        CheckConstraint("depth >= 0", name="depth_nonneg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("units.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    path: Mapped[str] = mapped_column(BinaryString(1024))
    depth: Mapped[int] = mapped_column(Integer, default=0)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    # The unit's business calendar; None: its nearest ancestor's, else the default one.
    calendar_id: Mapped[int | None] = mapped_column(
        ForeignKey("calendars.id", ondelete="SET NULL"), index=True
    )
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    functions: Mapped[list[UnitFunction]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="UnitFunction.function"
    )

    @classmethod
    def __scope__(cls, viewer: Viewer) -> ColumnElement[bool]:
        return in_subtree(cls.path, viewer)

    @property
    def function_names(self) -> list[str]:
        # Read from the aggregated column, so lists need no second query for functions.
        csv: str | None = self.functions_csv  # type: ignore[attr-defined]
        return sorted(filter(None, (csv or "").split(",")))


class UnitFunction(Base):
    """A department kind present in a unit (专业部门)."""

    __tablename__ = "unit_functions"
    __table_args__ = (
        CheckConstraint(
            "function IN ('service', 'business', 'marketing', 'technical')", name="known"
        ),
    )

    unit_id: Mapped[int] = mapped_column(
        ForeignKey("units.id", ondelete="CASCADE"), primary_key=True
    )
    function: Mapped[str] = mapped_column(String(20), primary_key=True)


# Every select of units carries its functions as one aggregated column (defined here, after
# UnitFunction exists).
Unit.functions_csv = column_property(  # type: ignore[attr-defined]
    select(func.aggregate_strings(UnitFunction.function, ","))
    .where(UnitFunction.unit_id == Unit.id)
    .correlate_except(UnitFunction)
    .scalar_subquery()
)
