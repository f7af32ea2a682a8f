"""Creating and upgrading the schema with Alembic (`kefu init`, tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory


def migrations_dir() -> Path:
    packaged = Path(__file__).parent / "_migrations"  # inside an installed wheel
    if packaged.exists():
        return packaged
    return Path(__file__).resolve().parents[2] / "migrations"  # source checkout


def alembic_config(url: str | None = None, connection: Any = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(url: str | None = None, connection: Any = None) -> None:
    """Bring the schema to the newest revision; harmless when it is there already."""
    command.upgrade(alembic_config(url, connection), "head")


def current_revision(connection: Any) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
