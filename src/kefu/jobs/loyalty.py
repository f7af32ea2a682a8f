"""The daily revenue trend behind the churn-risk list (one set-based rebuild a day; a
PostgreSQL advisory lock keeps two workers from doing it twice)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from kefu.loyalty import service


def run(session: Session) -> dict[str, int | None]:
    return {"revenue_trends": service.refresh_if_stale(session)}
