"""tickets: categories, calendars, tickets, events, routing rules, the outbox

Revision ID: e7560cba427b
Revises: 8ccb2720824c
Create Date: 2026-11-25 21:09:23.805711
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "e7560cba427b"
down_revision = "8ccb2720824c"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendars",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("hours", sa.JSON(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendars")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("topic", sa.String(length=60), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'sent', 'dead')", name=op.f("ck_outbox_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbox_dedupe_key")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_pending", ["status", "available_at"], unique=False)

    op.create_table(
        "ticket_categories",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("parent_code", sa.String(length=40), nullable=True),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=100), nullable=False),
        sa.Column("function", sa.String(length=20), nullable=True),
        sa.Column("is_complaint", sa.Boolean(), nullable=False),
        sa.Column("onsite", sa.Boolean(), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_code"],
            ["ticket_categories.code"],
            name=op.f("fk_ticket_categories_parent_code_ticket_categories"),
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_ticket_categories")),
    )
    op.create_table(
        "calendar_overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hours", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["calendars.id"],
            name=op.f("fk_calendar_overrides_calendar_id_calendars"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_overrides")),
        sa.UniqueConstraint(
            "calendar_id", "day", name=op.f("uq_calendar_overrides_calendar_id_day")
        ),
    )
    op.create_table(
        "routing_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("category_code", sa.String(length=40), nullable=True),
        sa.Column("function", sa.String(length=20), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('category_function', 'site_region')", name=op.f("ck_routing_rules_kind")
        ),
        sa.ForeignKeyConstraint(
            ["category_code"],
            ["ticket_categories.code"],
            name=op.f("fk_routing_rules_category_code_ticket_categories"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rules")),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("category_code", sa.String(length=40), nullable=False),
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("site_region_code", sa.String(length=12), nullable=True),
        sa.Column("owning_unit_id", sa.Integer(), nullable=False),
        sa.Column("handling_unit_id", sa.Integer(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("custom_fields", sa.JSON(), nullable=False),
        sa.Column("service_level", sa.String(length=4), nullable=True),
        sa.Column("service_level_version_id", sa.Integer(), nullable=True),
        sa.Column("first_response_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_response_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_minutes", sa.Float(), nullable=False),
        sa.Column("business_minutes_used", sa.Float(), nullable=True),
        sa.Column("breached_first_response", sa.Boolean(), nullable=False),
        sa.Column("breached_resolution", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("idempotency_key", sa.String(length=300), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "channel IN ('portal', 'email', 'api', 'phone', 'walk_in', 'visit')",
            name=op.f("ck_tickets_channel"),
        ),
        sa.CheckConstraint(
            "priority IN ('urgent', 'high', 'normal', 'low')", name=op.f("ck_tickets_priority")
        ),
        sa.CheckConstraint(
            "state IN ('new', 'open', 'pending', 'on_hold', 'resolved', 'closed')",
            name=op.f("ck_tickets_state"),
        ),
        sa.ForeignKeyConstraint(
            ["assignee_id"],
            ["staff.id"],
            name=op.f("fk_tickets_assignee_id_staff"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["category_code"],
            ["ticket_categories.code"],
            name=op.f("fk_tickets_category_code_ticket_categories"),
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_tickets_contact_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_tickets_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["handling_unit_id"], ["units.id"], name=op.f("fk_tickets_handling_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["owning_unit_id"], ["units.id"], name=op.f("fk_tickets_owning_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["service_level_version_id"],
            ["service_level_versions.id"],
            name=op.f("fk_tickets_service_level_version_id_service_level_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_tickets_idempotency_key")),
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index("ix_tickets_assignee_state", ["assignee_id", "state"], unique=False)
        batch_op.create_index(batch_op.f("ix_tickets_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_tickets_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(
            "ix_tickets_handling_state_due",
            ["handling_unit_id", "state", "resolution_due"],
            unique=False,
        )
        batch_op.create_index("ix_tickets_owning_state", ["owning_unit_id", "state"], unique=False)

    op.create_table(
        "ticket_collaborators",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff.id"],
            name=op.f("fk_ticket_collaborators_staff_id_staff"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_collaborators_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ticket_id", "staff_id", name=op.f("pk_ticket_collaborators")),
    )
    with op.batch_alter_table("ticket_collaborators", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ticket_collaborators_staff_id"), ["staff_id"], unique=False
        )

    op.create_table(
        "ticket_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_events_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_events")),
    )
    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.create_index("ix_ticket_events_ticket_id_id", ["ticket_id", "id"], unique=False)

    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.add_column(sa.Column("calendar_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_units_calendar_id"), ["calendar_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_units_calendar_id_calendars"),
            "calendars",
            ["calendar_id"],
            ["id"],
            ondelete="SET NULL",
        )

    _seed()


CATEGORIES = [
    # code, zh, en, function, complaint, on-site
    ("consultation", "咨询与售前", "Consultation and pre-sales", "marketing", False, False),
    ("order_delivery", "订单与交付", "Order and delivery", "business", False, False),
    ("installation", "安装开通", "Installation", "technical", False, True),
    ("fault_repair", "故障报修", "Fault repair", "technical", False, True),
    ("technical_support", "技术支持", "Technical support", "technical", False, False),
    ("upgrade_notice", "升级通知", "Upgrade notice", "technical", False, False),
    ("complaint", "投诉", "Complaint", "service", True, False),
    ("change_request", "设计变更", "Change request", "business", False, False),
    ("other", "其他", "Other", "service", False, False),
]
DEFAULT_HOURS = {str(d): [["08:30", "12:00"], ["13:30", "17:30"]] for d in range(5)}


def _seed() -> None:
    categories = sa.table(
        "ticket_categories",
        sa.column("code"),
        sa.column("parent_code"),
        sa.column("name_zh"),
        sa.column("name_en"),
        sa.column("function"),
        sa.column("is_complaint"),
        sa.column("onsite"),
        sa.column("sort_order"),
        sa.column("is_active"),
    )
    op.bulk_insert(
        categories,
        [
            {
                "code": c,
                "parent_code": None,
                "name_zh": zh,
                "name_en": en,
                "function": fn,
                "is_complaint": complaint,
                "onsite": onsite,
                "sort_order": i,
                "is_active": True,
            }
            for i, (c, zh, en, fn, complaint, onsite) in enumerate(CATEGORIES)
        ],
    )
    calendars = sa.table(
        "calendars",
        sa.column("name"),
        sa.column("timezone"),
        sa.column("country"),
        sa.column("hours", sa.JSON),
        sa.column("is_default"),
        sa.column("version"),
        sa.column("updated_at", sa.DateTime),
    )
    op.bulk_insert(
        calendars,
        [
            {
                "name": "标准工作日历",
                "timezone": "Asia/Shanghai",
                "country": "CN",
                "hours": DEFAULT_HOURS,
                "is_default": True,
                "version": 1,
                "updated_at": datetime(2026, 1, 1, tzinfo=UTC),
            }
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_units_calendar_id_calendars"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_units_calendar_id"))
        batch_op.drop_column("calendar_id")

    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_events_ticket_id_id")

    op.drop_table("ticket_events")
    with op.batch_alter_table("ticket_collaborators", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_collaborators_staff_id"))

    op.drop_table("ticket_collaborators")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_owning_state")
        batch_op.drop_index("ix_tickets_handling_state_due")
        batch_op.drop_index(batch_op.f("ix_tickets_customer_id"))
        batch_op.drop_index(batch_op.f("ix_tickets_created_at"))
        batch_op.drop_index("ix_tickets_assignee_state")

    op.drop_table("tickets")
    op.drop_table("routing_rules")
    op.drop_table("calendar_overrides")
    op.drop_table("ticket_categories")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_pending")

    op.drop_table("outbox")
    op.drop_table("calendars")
