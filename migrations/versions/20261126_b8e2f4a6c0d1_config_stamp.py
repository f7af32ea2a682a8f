"""configuration stamp: renewed by every write to the configuration the intake reads

Revision ID: b8e2f4a6c0d1
Revises: 7a3c5e9b1d24
Create Date: 2026-11-26 07:00:00

Web processes keep what they read of the ticket categories, custom fields, routing rules,
units (functions, regions, tree, calendars) and calendars between transactions, as long
as `config_stamp.stamp` is what it was (kefu.cache). Triggers renew the stamp on every
write to those tables, whoever writes (Kefu, a migration, an administrator's SQL). A
rolled-back write's stamp is never seen again (it is random), and a database built anew
starts with a stamp of its own. (On SQLite a later migration that rebuilds one of these
tables with batch_alter_table drops its triggers: create them again there.)
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "b8e2f4a6c0d1"
down_revision = "7a3c5e9b1d24"
branch_labels = None
depends_on = None

TABLES = (
    "ticket_categories",
    "ticket_fields",
    "routing_rules",
    "units",
    "unit_functions",
    "calendars",
)


def upgrade() -> None:
    op.create_table(
        "config_stamp",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("stamp", sa.String(32), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_config_stamp_one_row"),
    )
    op.execute(sa.text(f"INSERT INTO config_stamp (id, stamp) VALUES (1, '{uuid.uuid4().hex}')"))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION kefu_renew_config_stamp() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN UPDATE config_stamp SET stamp = md5(random()::text || clock_timestamp()::text)"
            " WHERE id = 1; RETURN NULL; END $$"
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER renew_config_stamp AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION kefu_renew_config_stamp()"
            )
    else:
        for table in TABLES:
            for verb in ("INSERT", "UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER renew_config_stamp_{table}_{verb.lower()} AFTER {verb} "
                    f"ON {table} BEGIN UPDATE config_stamp SET stamp = lower(hex(randomblob(16)))"
                    f" WHERE id = 1; END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER renew_config_stamp ON {table}")
        op.execute("DROP FUNCTION kefu_renew_config_stamp()")
    else:
        for table in TABLES:
            for verb in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER renew_config_stamp_{table}_{verb}")
    op.drop_table("config_stamp")
