from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from kefu.clock import now
from kefu.customers.models import Money
from kefu.db import Base, UTCDateTime
from kefu.scope import Viewer

SEVERITIES = (1, 2, 3)  # minor, major, critical
COMPENSATION_STATES = ("none", "pending", "approved", "rejected")


class ComplaintCause(Base):
    """The configurable list of root causes (根本原因)."""

    __tablename__ = "complaint_causes"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(default=True)


class Complaint(Base):
    """The complaint workflow beside a ticket of a complaint category: the ticket carries
    the conversation and the SLA (its level's stricter complaint targets); this row carries
    severity, cause, remedy, compensation and verification."""

    __tablename__ = "complaints"
    __table_args__ = (
        CheckConstraint("severity BETWEEN 1 AND 3", name="severity"),
        CheckConstraint(
            "compensation_state IN ('none', 'pending', 'approved', 'rejected')",
            name="compensation_state",
        ),
        CheckConstraint("compensation IS NULL OR compensation >= 0", name="compensation"),
        # Repeat detection (same customer and cause within N days) and the register.
        Index("ix_complaints_customer_cause", "customer_id", "cause_code", "created_at"),
        Index("ix_complaints_unit_created", "owning_unit_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), unique=True
    )
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    owning_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    severity: Mapped[int] = mapped_column(SmallInteger, default=1)
    severity_reason: Mapped[str] = mapped_column(String(20), default="")  # '' | repeat
    cause_code: Mapped[str | None] = mapped_column(ForeignKey("complaint_causes.code"))
    repeat_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("complaints.id", ondelete="SET NULL")
    )
    remedy: Mapped[str] = mapped_column(Text, default="")
    compensation: Mapped[Decimal | None] = mapped_column(Money)
    compensation_state: Mapped[str] = mapped_column(String(10), default="none")
    compensation_decided_by: Mapped[str | None] = mapped_column(String(100))
    compensation_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verified_by: Mapped[str | None] = mapped_column(String(100))
    verification: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    @classmethod
    def __scope__(cls, viewer: Viewer) -> ColumnElement[bool]:
        # Whoever sees the ticket sees its complaint: one rule, the ticket's.
        from kefu.tickets.models import Ticket

        return cls.ticket_id.in_(select(Ticket.id).where(Ticket.__scope__(viewer)))
