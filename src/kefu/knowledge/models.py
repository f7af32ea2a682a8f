from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from kefu.clock import now
from kefu.db import Base, UTCDateTime
from kefu.knowledge import policy
from kefu.scope import Viewer, owned_by_subtree
from kefu.tickets.models import shared_with_me

KINDS = ("personal", "unit", "global")


class Phrase(Base):
    """A standard phrase (规范用语): a canned reply with {placeholders}, personal, shared
    with a unit (and the units below it) or global."""

    __tablename__ = "phrases"
    __table_args__ = (
        CheckConstraint("kind IN ('personal', 'unit', 'global')", name="kind"),
        CheckConstraint(
            "(kind = 'unit') = (unit_id IS NOT NULL)", name="unit_only_for_unit_phrases"
        ),
        Index("ix_phrases_owner_id", "owner_id"),
        Index("ix_phrases_unit_id", "unit_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    created_by: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    __mapper_args__ = {"version_id_col": version}

    @property
    def placeholders(self) -> list[str]:
        return policy.placeholders(self.body)

    @classmethod
    def __scope__(cls, viewer: Viewer) -> ColumnElement[bool]:
        # Global ones; my personal ones; my unit's and those above (to use); my subtree's
        # (to manage, for supervisors).
        me = viewer.staff_id or -1
        return (
            (cls.kind == "global")
            | ((cls.kind == "personal") & (cls.owner_id == me))
            | ((cls.kind == "unit") & shared_with_me(cls.unit_id, viewer))
            | ((cls.kind == "unit") & owned_by_subtree(cls.unit_id, viewer))
        )
