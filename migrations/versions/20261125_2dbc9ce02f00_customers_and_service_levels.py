"""customers, contacts, revenue, industries and service levels (with defaults)

Revision ID: 2dbc9ce02f00
Revises: 97d723680e13
Create Date: 2026-11-25 20:34:54.951850
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "2dbc9ce02f00"
down_revision = "97d723680e13"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "industries",
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=100), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_industries")),
    )
    op.create_table(
        "service_levels",
        sa.Column("code", sa.String(length=4), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("current_version_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_service_levels")),
        sa.UniqueConstraint("rank", name=op.f("uq_service_levels_rank")),
    )
    op.create_table(
        "service_level_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("level_code", sa.String(length=4), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("return_visit_hours", sa.Integer(), nullable=False),
        sa.Column("return_visit_method", sa.String(length=10), nullable=False),
        sa.Column("visit_frequency_days", sa.Integer(), nullable=True),
        sa.Column("is_24x7", sa.Boolean(), nullable=False),
        sa.Column("pause_on_hold", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["level_code"],
            ["service_levels.code"],
            name=op.f("fk_service_level_versions_level_code_service_levels"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_level_versions")),
        sa.UniqueConstraint(
            "level_code", "version", name=op.f("uq_service_level_versions_level_code_version")
        ),
    )
    with op.batch_alter_table("service_level_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_service_level_versions_level_code"), ["level_code"], unique=False
        )

    with op.batch_alter_table("service_levels", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_service_levels_current", "service_level_versions", ["current_version_id"], ["id"]
        )

    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("short_name", sa.String(length=60), nullable=True),
        sa.Column("credit_code", sa.String(length=18), nullable=True),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column(
            "path",
            sa.String(length=1024).with_variant(
                sa.String(length=1024, collation="C"), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("industry_code", sa.String(length=20), nullable=True),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("owning_unit_id", sa.Integer(), nullable=False),
        sa.Column("account_manager_id", sa.Integer(), nullable=True),
        sa.Column("is_important", sa.Boolean(), nullable=False),
        sa.Column("is_group", sa.Boolean(), nullable=False),
        sa.Column("is_potential", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("tier", sa.String(length=1), nullable=True),
        sa.Column("service_level", sa.String(length=4), nullable=True),
        sa.Column("tier_rule", sa.String(length=40), nullable=True),
        sa.Column("tier_pinned", sa.Boolean(), nullable=False),
        sa.Column("pin_reason", sa.String(length=500), nullable=True),
        sa.Column("revenue_12m", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'dormant', 'lost')", name=op.f("ck_customers_status")
        ),
        sa.CheckConstraint(
            "tier IS NULL OR tier IN ('A', 'B', 'C')", name=op.f("ck_customers_tier")
        ),
        sa.ForeignKeyConstraint(
            ["account_manager_id"],
            ["staff.id"],
            name=op.f("fk_customers_account_manager_id_staff"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["industry_code"],
            ["industries.code"],
            name=op.f("fk_customers_industry_code_industries"),
        ),
        sa.ForeignKeyConstraint(
            ["owning_unit_id"],
            ["units.id"],
            name=op.f("fk_customers_owning_unit_id_units"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["customers.id"],
            name=op.f("fk_customers_parent_id_customers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("credit_code", name=op.f("uq_customers_credit_code")),
        sa.UniqueConstraint("external_id", name=op.f("uq_customers_external_id")),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customers_account_manager_id"), ["account_manager_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_customers_name"), ["name"], unique=False)
        batch_op.create_index(batch_op.f("ix_customers_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index("ix_customers_path", ["path"], unique=True)
        batch_op.create_index(batch_op.f("ix_customers_region_code"), ["region_code"], unique=False)
        batch_op.create_index(
            "ix_customers_unit_tier_revenue",
            ["owning_unit_id", "tier", "revenue_12m"],
            unique=False,
        )

    op.create_table(
        "sla_targets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("category_code", sa.String(length=40), nullable=True),
        sa.Column("first_response_minutes", sa.Integer(), nullable=False),
        sa.Column("next_response_minutes", sa.Integer(), nullable=False),
        sa.Column("resolution_minutes", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "priority IN ('urgent', 'high', 'normal', 'low')", name=op.f("ck_sla_targets_priority")
        ),
        sa.CheckConstraint(
            "first_response_minutes > 0 AND next_response_minutes > 0 AND resolution_minutes > 0",
            name=op.f("ck_sla_targets_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["service_level_versions.id"],
            name=op.f("fk_sla_targets_version_id_service_level_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_targets")),
        sa.UniqueConstraint(
            "version_id",
            "priority",
            "category_code",
            name=op.f("uq_sla_targets_version_id_priority_category_code"),
        ),
    )
    with op.batch_alter_table("sla_targets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sla_targets_version_id"), ["version_id"], unique=False)

    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("preferred_channel", sa.String(length=10), nullable=False),
        sa.Column("locale", sa.String(length=10), nullable=False),
        sa.Column("portal_access", sa.Boolean(), nullable=False),
        sa.Column("is_group_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "preferred_channel IN ('phone', 'email', 'sms', 'wechat', 'portal')",
            name=op.f("ck_contacts_channel"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_contacts_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contacts_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_contacts_email"), ["email"], unique=False)
        batch_op.create_index(batch_op.f("ix_contacts_phone"), ["phone"], unique=False)

    op.create_table(
        "revenue_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("business_line", sa.String(length=60), nullable=False),
        sa.Column("source_ref", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_revenue_records_amount_nonneg")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_revenue_records_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revenue_records")),
    )
    with op.batch_alter_table("revenue_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_revenue_records_customer_date", ["customer_id", "date"], unique=False
        )
        batch_op.create_index("ix_revenue_records_date", ["date"], unique=False)

    _seed()


INDUSTRIES = [
    ("manufacturing", "制造业", "Manufacturing"),
    ("government", "政府机关", "Government"),
    ("finance", "金融", "Finance"),
    ("education", "教育", "Education"),
    ("healthcare", "医疗卫生", "Healthcare"),
    ("energy", "能源", "Energy"),
    ("transport", "交通运输", "Transport and logistics"),
    ("retail", "批发零售", "Wholesale and retail"),
    ("it", "信息技术", "Information technology"),
    ("construction", "建筑业", "Construction"),
    ("agriculture", "农林牧渔", "Agriculture"),
    ("other", "其他", "Other"),
]

# (code, rank, zh, en, return-visit hours, visit every N days, 7x24, on-site hours, dedicated,
#  targets per priority: (first response, next response, resolution) in minutes)
LEVELS = [
    (
        "5A",
        5,
        "五星级服务",
        "Five-star service",
        24,
        30,
        True,
        2,
        True,
        {
            "urgent": (15, 60, 240),
            "high": (30, 120, 480),
            "normal": (60, 240, 1440),
            "low": (120, 480, 2880),
        },
    ),
    (
        "4A",
        4,
        "四星级服务",
        "Four-star service",
        48,
        90,
        False,
        4,
        True,
        {
            "urgent": (30, 120, 480),
            "high": (60, 240, 960),
            "normal": (120, 480, 2400),
            "low": (240, 960, 4800),
        },
    ),
    (
        "3A",
        3,
        "三星级服务",
        "Three-star service",
        72,
        180,
        False,
        8,
        False,
        {
            "urgent": (60, 240, 960),
            "high": (120, 480, 1920),
            "normal": (240, 960, 4800),
            "low": (480, 1440, 7200),
        },
    ),
    (
        "2A",
        2,
        "二星级服务",
        "Two-star service",
        120,
        365,
        False,
        24,
        False,
        {
            "urgent": (120, 480, 1440),
            "high": (240, 960, 2880),
            "normal": (480, 1440, 7200),
            "low": (960, 2880, 9600),
        },
    ),
    (
        "1A",
        1,
        "一星级服务",
        "One-star service",
        168,
        None,
        False,
        48,
        False,
        {
            "urgent": (240, 960, 2880),
            "high": (480, 1440, 4800),
            "normal": (960, 2880, 9600),
            "low": (1440, 4320, 14400),
        },
    ),
]


def _seed() -> None:
    """Default industries and service levels; admins edit them afterwards (new versions)."""
    industries = sa.table(
        "industries",
        sa.column("code"),
        sa.column("name_zh"),
        sa.column("name_en"),
        sa.column("sort_order"),
        sa.column("is_active"),
    )
    op.bulk_insert(
        industries,
        [
            {"code": c, "name_zh": zh, "name_en": en, "sort_order": i, "is_active": True}
            for i, (c, zh, en) in enumerate(INDUSTRIES)
        ],
    )
    levels = sa.table(
        "service_levels", sa.column("code"), sa.column("rank"), sa.column("current_version_id")
    )
    versions = sa.table(
        "service_level_versions",
        sa.column("id"),
        sa.column("level_code"),
        sa.column("version"),
        sa.column("name_zh"),
        sa.column("name_en"),
        sa.column("description"),
        sa.column("content", sa.JSON),
        sa.column("return_visit_hours"),
        sa.column("return_visit_method"),
        sa.column("visit_frequency_days"),
        sa.column("is_24x7"),
        sa.column("pause_on_hold"),
        sa.column("created_at", sa.DateTime),
        sa.column("created_by"),
    )
    targets = sa.table(
        "sla_targets",
        sa.column("version_id"),
        sa.column("priority"),
        sa.column("category_code"),
        sa.column("first_response_minutes"),
        sa.column("next_response_minutes"),
        sa.column("resolution_minutes"),
    )
    created = datetime(2026, 1, 1, tzinfo=UTC)
    for vid, (code, rank, zh, en, rv_hours, every, h24, onsite, dedicated, per) in enumerate(
        LEVELS, start=1
    ):
        op.bulk_insert(levels, [{"code": code, "rank": rank, "current_version_id": None}])
        content = [
            {"key": "dedicated_manager", "value": dedicated},
            {"key": "onsite_response_hours", "value": onsite},
            {"key": "hotline_24x7", "value": h24 or rank >= 4},
            {"key": "visit_frequency_days", "value": every},
        ]
        op.bulk_insert(
            versions,
            [
                {
                    "id": vid,
                    "level_code": code,
                    "version": 1,
                    "name_zh": zh,
                    "name_en": en,
                    "description": "",
                    "content": content,
                    "return_visit_hours": rv_hours,
                    "return_visit_method": "onsite" if rank == 5 else "phone",
                    "visit_frequency_days": every,
                    "is_24x7": h24,
                    "pause_on_hold": False,
                    "created_at": created,
                    "created_by": "system",
                }
            ],
        )
        op.bulk_insert(
            targets,
            [
                {
                    "version_id": vid,
                    "priority": p,
                    "category_code": None,
                    "first_response_minutes": a,
                    "next_response_minutes": b,
                    "resolution_minutes": c,
                }
                for p, (a, b, c) in per.items()
            ],
        )
        op.execute(
            sa.text("UPDATE service_levels SET current_version_id = :v WHERE code = :c").bindparams(
                v=vid, c=code
            )
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "SELECT setval(pg_get_serial_sequence('service_level_versions', 'id'), "
            "(SELECT max(id) FROM service_level_versions))"
        )


def downgrade() -> None:
    with op.batch_alter_table("revenue_records", schema=None) as batch_op:
        batch_op.drop_index("ix_revenue_records_date")
        batch_op.drop_index("ix_revenue_records_customer_date")

    op.drop_table("revenue_records")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contacts_phone"))
        batch_op.drop_index(batch_op.f("ix_contacts_email"))
        batch_op.drop_index(batch_op.f("ix_contacts_customer_id"))

    op.drop_table("contacts")
    with op.batch_alter_table("sla_targets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sla_targets_version_id"))

    op.drop_table("sla_targets")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_unit_tier_revenue")
        batch_op.drop_index(batch_op.f("ix_customers_region_code"))
        batch_op.drop_index("ix_customers_path")
        batch_op.drop_index(batch_op.f("ix_customers_parent_id"))
        batch_op.drop_index(batch_op.f("ix_customers_name"))
        batch_op.drop_index(batch_op.f("ix_customers_account_manager_id"))

    op.drop_table("customers")
    with op.batch_alter_table("service_level_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_level_versions_level_code"))

    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("fk_service_levels_current", "service_levels", type_="foreignkey")
    else:  # SQLite cannot drop a constraint in place; emptying the reference is enough
        op.execute("UPDATE service_levels SET current_version_id = NULL")
    op.drop_table("service_level_versions")
    op.drop_table("service_levels")
    op.drop_table("industries")
