from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from kefu.clock import now
from kefu.db import Base, UTCDateTime
from kefu.scope import Viewer, owned_by_subtree
from kefu.units.models import Unit


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"), index=True)
    locale: Mapped[str] = mapped_column(String(10), default="zh_CN")
    is_active: Mapped[bool] = mapped_column(default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    unit: Mapped[Unit] = relationship(lazy="raise")
    role_rows: Mapped[list[StaffRole]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="StaffRole.role"
    )

    @classmethod
    def __scope__(cls, viewer: Viewer) -> ColumnElement[bool]:
        # Staff of the viewer's subtree, and always the viewer's own record.
        return owned_by_subtree(cls.unit_id, viewer) | (cls.id == (viewer.staff_id or -1))

    @property
    def roles(self) -> list[str]:
        return [r.role for r in self.role_rows]


class StaffRole(Base):
    __tablename__ = "staff_roles"
    __table_args__ = (
        CheckConstraint("role IN ('agent', 'supervisor', 'manager', 'admin')", name="known"),
    )

    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(20), primary_key=True)
