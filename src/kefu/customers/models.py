from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from kefu.clock import now
from kefu.db import Base, BinaryString, UTCDateTime
from kefu.scope import OwnedBySubtree, ScopePart, Viewer, any_part, of_contact

STATUSES = ("active", "dormant", "lost")
CHANNELS = ("phone", "email", "sms", "wechat", "portal")
Money = Numeric(18, 2)
BigId = BigInteger().with_variant(Integer, "sqlite")


class Industry(Base):
    """An entry of the configurable industry list."""

    __tablename__ = "industries"

    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(default=True)


class Customer(Base):
    """A served organisation. Group trees use a materialised path like the unit tree."""

    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'dormant', 'lost')", name="status"),
        CheckConstraint("tier IS NULL OR tier IN ('A', 'B', 'C')", name="tier"),
        Index("ix_customers_path", "path", unique=True),
        # The county agent's list: per unit of the subtree, filtered by tier, sorted by
        # revenue (then id, the keyset's tie-break), read backwards n entries at a time.
        Index("ix_customers_unit_tier_revenue", "owning_unit_id", "tier", "revenue_12m", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    short_name: Mapped[str | None] = mapped_column(String(60))
    credit_code: Mapped[str | None] = mapped_column(String(18), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="RESTRICT"), index=True
    )
    path: Mapped[str] = mapped_column(BinaryString(1024))
    depth: Mapped[int] = mapped_column(Integer, default=0)
    industry_code: Mapped[str | None] = mapped_column(ForeignKey("industries.code"))
    region_code: Mapped[str] = mapped_column(String(12))
    owning_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"))
    account_manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff.id", ondelete="SET NULL"), index=True
    )
    is_important: Mapped[bool] = mapped_column(default=False)
    is_group: Mapped[bool] = mapped_column(default=False)
    is_potential: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(10), default="active")
    notes: Mapped[str] = mapped_column(Text, default="")
    # Tiering results (written by tiering runs and pins).
    tier: Mapped[str | None] = mapped_column(String(1))
    service_level: Mapped[str | None] = mapped_column(String(4))
    tier_rule: Mapped[str | None] = mapped_column(String(40))
    tier_pinned: Mapped[bool] = mapped_column(default=False)
    pin_reason: Mapped[str | None] = mapped_column(String(500))
    revenue_12m: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    contacts: Mapped[list[Contact]] = relationship(
        lazy="raise", back_populates="customer", order_by="Contact.id"
    )

    @classmethod
    def __scope_parts__(cls, viewer: Viewer) -> tuple[ScopePart, ...]:
        if viewer.is_contact:  # the portal: their own customer (a group's branches too)
            return (of_contact(cls.id, viewer),)
        # Owned by the viewer's subtree, or the viewer is its account manager.
        return (
            OwnedBySubtree(cls.owning_unit_id),
            cls.account_manager_id == (viewer.staff_id or -1),
        )

    @classmethod
    def __scope__(cls, viewer: Viewer) -> ColumnElement[bool]:
        return any_part(viewer, *cls.__scope_parts__(viewer))


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        CheckConstraint(
            "preferred_channel IN ('phone', 'email', 'sms', 'wechat', 'portal')", name="channel"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    preferred_channel: Mapped[str] = mapped_column(String(10), default="phone")
    locale: Mapped[str] = mapped_column(String(10), default="zh_CN")
    portal_access: Mapped[bool] = mapped_column(default=False)
    is_group_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    customer: Mapped[Customer] = relationship(lazy="raise", back_populates="contacts")


class RevenueRecord(Base):
    __tablename__ = "revenue_records"
    __table_args__ = (
        Index("ix_revenue_records_customer_date", "customer_id", "date"),
        Index("ix_revenue_records_date", "date"),
        CheckConstraint("amount >= 0", name="amount_nonneg"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    business_line: Mapped[str] = mapped_column(String(60), default="")
    source_ref: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
