"""The schema comes from migrations; the models must agree with them."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from kefu import schema
from kefu.audit.service import record
from kefu.models import metadata
from kefu.scope import SYSTEM


def test_models_match_migrations(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, metadata)
    assert diff == [], diff


def test_upgrade_twice_is_harmless(engine):
    with engine.begin() as conn:
        schema.upgrade(connection=conn)
        assert schema.current_revision(conn) == schema.head_revision()


def test_audit_log_is_append_only(db):
    entry = record(db, SYSTEM, "test.action", "thing", 1, {"x": {"before": 1, "after": 2}})
    db.flush()
    with pytest.raises(DBAPIError, match="append-only"), db.begin_nested():
        db.execute(text("UPDATE audit_log SET action = 'forged' WHERE id = :id"), {"id": entry.id})
    with pytest.raises(DBAPIError, match="append-only"), db.begin_nested():
        db.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": entry.id})
    assert (
        db.scalar(text("SELECT action FROM audit_log WHERE id = :id"), {"id": entry.id})
        == "test.action"
    )


def test_downgrade_to_base_and_back(committed_engine):
    from alembic import command

    with committed_engine.begin() as conn:
        cfg = schema.alembic_config(connection=conn)
        command.downgrade(cfg, "base")
        assert schema.current_revision(conn) is None
        command.upgrade(cfg, "head")
        assert schema.current_revision(conn) == schema.head_revision()
