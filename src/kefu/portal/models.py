"""Portal accounts of contacts, their browser sessions and their invitations.

An account belongs to one contact; it signs in while the contact keeps its portal-access
flag, so clearing the flag signs the contact out at the next request. Secrets (session
cookies, invitation links) are random and kept only as their SHA-256.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kefu.clock import now
from kefu.customers.models import Contact
from kefu.db import Base, UTCDateTime


class PortalAccount(Base):
    """A contact's sign-in: their e-mail address or phone (as invited) and a password."""

    __tablename__ = "portal_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), unique=True
    )
    email: Mapped[str | None] = mapped_column(String(254), unique=True)  # lower case
    phone: Mapped[str | None] = mapped_column(String(32), unique=True)  # normalised
    password_hash: Mapped[str | None] = mapped_column(String(255))  # None until activated
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    contact: Mapped[Contact] = relationship(lazy="raise")


class PortalSession(Base):
    """A signed-in contact; separate from staff sessions and tokens.

    kind `browser`: the portal's pages (the `kefu_portal` cookie and its own CSRF token);
    kind `api`: a Bearer token of the contact API `/api/v1/portal` (from
    `POST /api/v1/portal/token`). Each opens only its own door: a token in the cookie, or
    the cookie's secret as a token, signs nobody in."""

    __tablename__ = "portal_sessions"
    __table_args__ = (CheckConstraint("kind IN ('browser', 'api')", name="kind"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the secret
    account_id: Mapped[int] = mapped_column(
        ForeignKey("portal_accounts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10), default="browser", server_default="browser")
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class PortalInvitation(Base):
    """A single-use, expiring link to set the password (first sign-in or a reset)."""

    __tablename__ = "portal_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # a newer link replaced it
