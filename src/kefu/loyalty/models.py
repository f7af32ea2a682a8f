from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Date, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from kefu.customers.models import Money
from kefu.db import Base


class CustomerRevenueTrend(Base):
    """Each customer's revenue of the 12 months up to `as_of` and of the 12 before, kept by
    the worker once a day (one set-based statement): the churn-risk list compares them
    without summing millions of revenue records per request."""

    __tablename__ = "customer_revenue_trends"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    revenue_12m: Mapped[Decimal] = mapped_column(Money)
    revenue_prior_12m: Mapped[Decimal] = mapped_column(Money)
    as_of: Mapped[date] = mapped_column(Date)
