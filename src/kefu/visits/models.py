from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from kefu.clock import now
from kefu.db import Base, UTCDateTime
from kefu.scope import Viewer, owned_by_subtree

KINDS = ("ticket", "periodic", "recovery")
METHODS = ("phone", "onsite", "survey")
STATES = ("scheduled", "done", "failed", "cancelled")


class ReturnVisit(Base):
    """One follow-up contact with a customer: after a resolved ticket, a periodic visit of a
    key account, or the second ask after a service recovery.

    `dedupe_key` makes scheduling idempotent (a ticket resolved twice by a retried request,
    two workers planning the same periodic visit).
    """

    __tablename__ = "return_visits"
    __table_args__ = (
        CheckConstraint("kind IN ('ticket', 'periodic', 'recovery')", name="kind"),
        CheckConstraint("method IN ('phone', 'onsite', 'survey')", name="method"),
        CheckConstraint("state IN ('scheduled', 'done', 'failed', 'cancelled')", name="state"),
        # The queue: a unit's open visits by due date; the overdue sweep reads it too.
        Index("ix_return_visits_unit_state_due", "owning_unit_id", "state", "due_at"),
        Index("ix_return_visits_customer", "customer_id", "kind", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    method: Mapped[str] = mapped_column(String(10))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    owning_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(10), default="scheduled")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The outcome, once reached (or given up).
    reached: Mapped[bool | None] = mapped_column()
    satisfied: Mapped[bool | None] = mapped_column()
    follow_up: Mapped[bool] = mapped_column(default=False)
    customer_words: Mapped[str] = mapped_column(Text, default="")
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_by: Mapped[str | None] = mapped_column(String(100))
    # Overdue ladder: 0 not yet, 1 unit head told at the due date, 2 parent unit told.
    escalation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    @classmethod
    def __scope__(cls, viewer: Viewer) -> ColumnElement[bool]:
        # The owning unit's subtree sees its visits; the assignee sees their own.
        return owned_by_subtree(cls.owning_unit_id, viewer) | (
            cls.assignee_id == (viewer.staff_id or -1)
        )


class ReturnVisitAttempt(Base):
    """Each call or trip, reached or not: the history behind the visit's outcome."""

    __tablename__ = "return_visit_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(
        ForeignKey("return_visits.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    by: Mapped[str] = mapped_column(String(100))
    reached: Mapped[bool] = mapped_column()
    note: Mapped[str] = mapped_column(Text, default="")
