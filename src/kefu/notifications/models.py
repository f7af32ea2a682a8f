from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kefu.clock import now
from kefu.db import Base, UTCDateTime

BigId = BigInteger().with_variant(Integer, "sqlite")


class OutboxMessage(Base):
    """A notification to deliver after commit (email, webhook, chat robot, in-app).

    Written in the same transaction as its cause, so a crash loses none; `dedupe_key` is
    unique, so a cause that is processed twice still notifies once.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'dead')", name="status"),
        Index("ix_outbox_pending", "status", "available_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    topic: Mapped[str] = mapped_column(String(60))  # e.g. ticket.created, sla.warning
    recipient: Mapped[str] = mapped_column(String(200))  # staff:12, unit:5, contact:9 …
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
