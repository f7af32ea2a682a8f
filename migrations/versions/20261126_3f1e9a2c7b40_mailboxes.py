"""mail: mailboxes fetched over IMAP, the intake log of every mail taken in, and an index
on lowercased contact addresses for matching senders

Revision ID: 3f1e9a2c7b40
Revises: 523ded87dbdf
Create Date: 2026-11-26 00:05:05.373752
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "3f1e9a2c7b40"
down_revision = "523ded87dbdf"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailboxes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("function", sa.String(length=20), nullable=True),
        sa.Column("category_code", sa.String(length=40), nullable=False),
        sa.Column("imap_host", sa.String(length=253), nullable=False),
        sa.Column("imap_port", sa.Integer(), nullable=False),
        sa.Column("imap_security", sa.String(length=10), nullable=False),
        sa.Column("imap_user", sa.String(length=254), nullable=False),
        sa.Column("imap_password", sa.String(length=1000), nullable=False),
        sa.Column("imap_folder", sa.String(length=200), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_fetch_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "function IS NULL OR function IN ('service', 'business', 'marketing', 'technical')",
            name=op.f("ck_mailboxes_function"),
        ),
        sa.CheckConstraint(
            "imap_security IN ('tls', 'starttls', 'plain')", name=op.f("ck_mailboxes_security")
        ),
        sa.ForeignKeyConstraint(
            ["category_code"],
            ["ticket_categories.code"],
            name=op.f("fk_mailboxes_category_code_ticket_categories"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_mailboxes_unit_id_units"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailboxes")),
        sa.UniqueConstraint("address", name=op.f("uq_mailboxes_address")),
    )
    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mailboxes_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "inbound_mails",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("message_key", sa.String(length=300), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=True),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("from_address", sa.String(length=254), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("raw_sha256", sa.String(length=64), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('ticket', 'reply', 'ignored', 'unknown_sender', 'quarantined', "
            "'dropped', 'retry')",
            name=op.f("ck_inbound_mails_status"),
        ),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_inbound_mails_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_inbound_mails_ticket_id_tickets"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_mails")),
        sa.UniqueConstraint("message_key", name=op.f("uq_inbound_mails_message_key")),
    )
    with op.batch_alter_table("inbound_mails", schema=None) as batch_op:
        batch_op.create_index("ix_inbound_mails_mailbox_id", ["mailbox_id", "id"], unique=False)
        batch_op.create_index("ix_inbound_mails_status_id", ["status", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_inbound_mails_ticket_id"), ["ticket_id"], unique=False)

    op.create_index("ix_contacts_email_lower", "contacts", [sa.text("lower(email)")])


def downgrade() -> None:
    op.drop_index("ix_contacts_email_lower", table_name="contacts")
    with op.batch_alter_table("inbound_mails", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_mails_ticket_id"))
        batch_op.drop_index("ix_inbound_mails_status_id")
        batch_op.drop_index("ix_inbound_mails_mailbox_id")

    op.drop_table("inbound_mails")
    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mailboxes_unit_id"))

    op.drop_table("mailboxes")
