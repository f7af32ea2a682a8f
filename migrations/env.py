"""Alembic environment. Version files use plain `op` calls and never import Kefu's code;
this file imports the models only so that autogenerate can compare against them."""

from __future__ import annotations

from alembic import context

from kefu.config import get_settings
from kefu.db import make_engine
from kefu.models import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    engine = make_engine(url)
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # Batch migrations rebuild tables that others reference; SQLite checks foreign
            # keys on DROP TABLE, so they are off while the schema changes (outside the
            # transaction, where the pragma takes effect).
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        _run_with(conn)
        conn.commit()
        if sqlite:
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
    engine.dispose()


def _run_with(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Kefu's migrations run online only (kefu init).")
run()
