from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from kefu.clock import now
from kefu.db import Base, UTCDateTime
from kefu.scope import Viewer, owned_by_subtree

# The five SERVQUAL dimensions, in the order surveys ask them.
DIMENSIONS = ("reliability", "responsiveness", "assurance", "empathy", "tangibles")


class SurveyTemplate(Base):
    """What a survey asks, in both languages; admins edit it. Answers keep their template."""

    __tablename__ = "survey_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # {"intro": {"zh_CN": …, "en": …}, "reliability": {"zh_CN": …, "en": …}, …}
    texts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_default: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)


class SurveyInvitation(Base):
    """A survey link sent for a ticket or visit: signed, expiring, answered once."""

    __tablename__ = "survey_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("survey_templates.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    visit_id: Mapped[int | None] = mapped_column(
        ForeignKey("return_visits.id", ondelete="SET NULL"), index=True
    )
    owning_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    locale: Mapped[str] = mapped_column(String(10), default="zh_CN")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)

    @classmethod
    def __scope__(cls, viewer: Viewer) -> ColumnElement[bool]:
        return owned_by_subtree(cls.owning_unit_id, viewer)


class SurveyAnswer(Base):
    """One answered survey. The facts reports group by (unit, agent, tier, level, category)
    are copied from the ticket at answer time, so reports never replay history."""

    __tablename__ = "survey_answers"
    __table_args__ = (
        CheckConstraint("channel IN ('link', 'phone')", name="channel"),
        CheckConstraint("csat IS NULL OR csat BETWEEN 1 AND 5", name="csat"),
        CheckConstraint("nps IS NULL OR nps BETWEEN 0 AND 10", name="nps"),
        *(
            CheckConstraint(f"{p}_{d} BETWEEN 1 AND 7", name=f"{p}_{d}")
            for d in DIMENSIONS
            for p in ("e", "p")
        ),
        Index("ix_survey_answers_unit_at", "owning_unit_id", "answered_at"),
        Index("ix_survey_answers_agent_at", "agent_id", "answered_at"),
        Index("ix_survey_answers_customer_at", "customer_id", "answered_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int | None] = mapped_column(
        ForeignKey("survey_invitations.id", ondelete="SET NULL"), unique=True
    )
    visit_id: Mapped[int | None] = mapped_column(
        ForeignKey("return_visits.id", ondelete="SET NULL"), unique=True
    )
    template_id: Mapped[int] = mapped_column(ForeignKey("survey_templates.id"))
    channel: Mapped[str] = mapped_column(String(10))
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), index=True
    )
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    owning_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    tier: Mapped[str] = mapped_column(String(1), default="")
    service_level: Mapped[str] = mapped_column(String(4), default="")
    category_code: Mapped[str] = mapped_column(String(40), default="")
    e_reliability: Mapped[int] = mapped_column(SmallInteger)
    p_reliability: Mapped[int] = mapped_column(SmallInteger)
    e_responsiveness: Mapped[int] = mapped_column(SmallInteger)
    p_responsiveness: Mapped[int] = mapped_column(SmallInteger)
    e_assurance: Mapped[int] = mapped_column(SmallInteger)
    p_assurance: Mapped[int] = mapped_column(SmallInteger)
    e_empathy: Mapped[int] = mapped_column(SmallInteger)
    p_empathy: Mapped[int] = mapped_column(SmallInteger)
    e_tangibles: Mapped[int] = mapped_column(SmallInteger)
    p_tangibles: Mapped[int] = mapped_column(SmallInteger)
    expected_total: Mapped[int] = mapped_column(SmallInteger)
    perceived_total: Mapped[int] = mapped_column(SmallInteger)
    csat: Mapped[int | None] = mapped_column(SmallInteger)
    nps: Mapped[int | None] = mapped_column(SmallInteger)
    comment: Mapped[str] = mapped_column(Text, default="")
    entered_by: Mapped[str | None] = mapped_column(String(100))  # an agent, for phone answers
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    month: Mapped[date] = mapped_column(Date)  # first day, in the owning unit's time zone

    @property
    def index(self) -> float:
        return self.perceived_total * 100.0 / self.expected_total

    @classmethod
    def __scope__(cls, viewer: Viewer) -> ColumnElement[bool]:
        return owned_by_subtree(cls.owning_unit_id, viewer) | (
            cls.agent_id == (viewer.staff_id or -1)
        )


class SatisfactionMonth(Base):
    """Sums of the answers per unit, month and the facts reports group by, kept up to date
    in the answer's transaction: reports over millions of answers read these sums."""

    __tablename__ = "satisfaction_months"
    __table_args__ = (
        UniqueConstraint("unit_id", "month", "tier", "service_level", "category_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    month: Mapped[date] = mapped_column(Date)  # the first day, in the unit's calendar zone
    tier: Mapped[str] = mapped_column(String(1), default="")
    service_level: Mapped[str] = mapped_column(String(4), default="")
    category_code: Mapped[str] = mapped_column(String(40), default="")
    answers: Mapped[int] = mapped_column(Integer, default=0)
    expected: Mapped[int] = mapped_column(Integer, default=0)
    perceived: Mapped[int] = mapped_column(Integer, default=0)
    e_reliability: Mapped[int] = mapped_column(Integer, default=0)
    p_reliability: Mapped[int] = mapped_column(Integer, default=0)
    e_responsiveness: Mapped[int] = mapped_column(Integer, default=0)
    p_responsiveness: Mapped[int] = mapped_column(Integer, default=0)
    e_assurance: Mapped[int] = mapped_column(Integer, default=0)
    p_assurance: Mapped[int] = mapped_column(Integer, default=0)
    e_empathy: Mapped[int] = mapped_column(Integer, default=0)
    p_empathy: Mapped[int] = mapped_column(Integer, default=0)
    e_tangibles: Mapped[int] = mapped_column(Integer, default=0)
    p_tangibles: Mapped[int] = mapped_column(Integer, default=0)
    csat_answers: Mapped[int] = mapped_column(Integer, default=0)
    csat_satisfied: Mapped[int] = mapped_column(Integer, default=0)  # 4 or 5
    nps_answers: Mapped[int] = mapped_column(Integer, default=0)
    promoters: Mapped[int] = mapped_column(Integer, default=0)  # 9–10
    detractors: Mapped[int] = mapped_column(Integer, default=0)  # 0–6


class RecoveryTask(Base):
    """Service recovery after a low result: the unit head acts by a deadline, records the
    outcome, and the customer is asked again."""

    __tablename__ = "recovery_tasks"
    __table_args__ = (
        CheckConstraint("state IN ('open', 'done')", name="state"),
        Index("ix_recovery_tasks_unit_state_due", "owning_unit_id", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    answer_id: Mapped[int] = mapped_column(
        ForeignKey("survey_answers.id", ondelete="CASCADE"), unique=True
    )
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    owning_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)  # index, csat, nps
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(10), default="open")
    outcome: Mapped[str] = mapped_column(Text, default="")
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_by: Mapped[str | None] = mapped_column(String(100))
    followup_visit_id: Mapped[int | None] = mapped_column(
        ForeignKey("return_visits.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    @classmethod
    def __scope__(cls, viewer: Viewer) -> ColumnElement[bool]:
        return owned_by_subtree(cls.owning_unit_id, viewer) | (
            cls.assignee_id == (viewer.staff_id or -1)
        )
