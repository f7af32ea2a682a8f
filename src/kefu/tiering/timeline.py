"""The tiering line of a customer's timeline."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kefu.customers.timeline import TimelineItem
from kefu.i18n import N_
from kefu.tiering.models import TierHistory


def tier_changes(
    session: Session, customer_id: int, before: datetime | None, limit: int
) -> list[TimelineItem]:
    stmt = (
        select(TierHistory)
        .where(TierHistory.customer_id == customer_id)
        .order_by(TierHistory.at.desc(), TierHistory.id.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(TierHistory.at < before)
    return [
        TimelineItem(
            at=h.at,
            kind="tier",
            title=N_("Tier {from_tier} → {to_tier}, level {from_level} → {to_level} ({reason})"),
            params={
                "from_tier": h.from_tier or "–",
                "to_tier": h.to_tier or "–",
                "from_level": h.from_level or "–",
                "to_level": h.to_level or "–",
                "reason": h.reason,
            },
            actor=h.actor,
            ref=f"/tiering/runs/{h.run_id}" if h.run_id else None,
        )
        for h in session.scalars(stmt)
    ]
