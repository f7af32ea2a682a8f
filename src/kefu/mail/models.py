"""Mailboxes fetched over IMAP, and every mail taken from them (the intake log, the unknown
sender queue and the quarantine)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from kefu.clock import now
from kefu.customers.models import Contact
from kefu.db import Base, UTCDateTime
from kefu.scope import Viewer, owned_by_subtree

BigId = BigInteger().with_variant(Integer, "sqlite")
SECURITY = ("tls", "starttls", "plain")
# What became of a mail: a new ticket, a message on a ticket, ignored (auto-reply, bounce),
# waiting for a person to name its customer, quarantined, dropped by a person, or queued
# for another try by a person.
STATUSES = ("ticket", "reply", "ignored", "unknown_sender", "quarantined", "dropped", "retry")
WAITING = ("unknown_sender", "quarantined", "retry")


class Mailbox(Base):
    """One IMAP mailbox of a unit (optionally of one of its functions)."""

    __tablename__ = "mailboxes"
    __table_args__ = (
        CheckConstraint("imap_security IN ('tls', 'starttls', 'plain')", name="security"),
        CheckConstraint(
            "function IS NULL OR function IN ('service', 'business', 'marketing', 'technical')",
            name="function",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(254), unique=True)  # where customers write
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"), index=True)
    function: Mapped[str | None] = mapped_column(String(20))
    category_code: Mapped[str] = mapped_column(ForeignKey("ticket_categories.code"))
    imap_host: Mapped[str] = mapped_column(String(253))
    imap_port: Mapped[int] = mapped_column(Integer, default=993)
    imap_security: Mapped[str] = mapped_column(String(10), default="tls")
    imap_user: Mapped[str] = mapped_column(String(254))
    imap_password: Mapped[str] = mapped_column(String(1000))  # Fernet token (kefu.crypto)
    imap_folder: Mapped[str] = mapped_column(String(200), default="INBOX")
    is_active: Mapped[bool] = mapped_column(default=True)
    # A worker holds the mailbox until this instant while it fetches, so two workers never
    # fetch the same mailbox at once.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_fetch_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    @classmethod
    def __scope__(cls, viewer: Viewer) -> ColumnElement[bool]:
        return owned_by_subtree(cls.unit_id, viewer)


class InboundMail(Base):
    """A mail taken from a mailbox, once: `message_key` (its Message-ID, or the hash of a
    mail without one) is unique, so a re-fetch finds it and makes nothing new."""

    __tablename__ = "inbound_mails"
    __table_args__ = (
        CheckConstraint(
            "status IN ('ticket', 'reply', 'ignored', 'unknown_sender', 'quarantined', "
            "'dropped', 'retry')",
            name="status",
        ),
        Index("ix_inbound_mails_status_id", "status", "id"),
        Index("ix_inbound_mails_mailbox_id", "mailbox_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    message_key: Mapped[str] = mapped_column(String(300), unique=True)
    uid: Mapped[int | None] = mapped_column(BigInteger)  # IMAP UID in the mailbox's folder
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(40))  # a code, see mail.parse.REASONS
    detail: Mapped[str | None] = mapped_column(String(500))
    from_address: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200), default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), index=True
    )
    # The raw mail, kept under the data dir while a person must look at it.
    raw_sha256: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    @classmethod
    def __scope__(cls, viewer: Viewer) -> ColumnElement[bool]:
        return cls.mailbox_id.in_(
            select(Mailbox.id).where(owned_by_subtree(Mailbox.unit_id, viewer))
        )


class MailTemplate(Base):
    """An administrator's wording of one outgoing mail in one language; without a row the
    built-in wording applies (kefu.mail.templates.DEFAULTS)."""

    __tablename__ = "mail_templates"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    locale: Mapped[str] = mapped_column(String(10), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


# Customers are matched by the sender's address whatever its case: one index on the
# lowercased contact address serves the look-up of every incoming mail.
Index("ix_contacts_email_lower", func.lower(Contact.email))
