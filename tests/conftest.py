"""Every test runs on SQLite, and also on PostgreSQL when KEFU_TEST_DATABASE_URL is set.

The schema is built once per database with `alembic upgrade head`; each test then runs
inside a transaction that is rolled back, with the code's own commits turned into
savepoints, so tests are isolated without rebuilding anything.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from kefu import cache, clock, schema
from kefu.app import create_app
from kefu.config import Settings, use_settings
from kefu.db import make_engine, make_sessionmaker
from kefu.i18n import set_locale

PG_URL = os.environ.get("KEFU_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def private_schema_engine(url: str) -> tuple[Engine, str]:
    """An engine whose search_path is a fresh schema of this run, so that several runs
    (developers, CI) can share one PostgreSQL database without seeing each other."""
    name = f"kefu_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with make_engine(url).begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    return make_engine(url, connect_args={"options": f"-csearch_path={name}"}), name


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "kefu-test.db")
    assert PG_URL
    return PG_URL


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    pg_schema = None
    if database_url.startswith("postgresql"):
        eng, pg_schema = private_schema_engine(database_url)
    else:
        eng = make_engine(database_url)
    with eng.begin() as conn:
        schema.upgrade(connection=conn)
    yield eng
    eng.dispose()
    if pg_schema:
        with make_engine(database_url).begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{pg_schema}" CASCADE'))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Iterator[Settings]:
    s = Settings(
        database_url=database_url,
        data_dir=tmp_path / "var",
        secret_key="test-secret",
        embedded_worker=False,
    )
    use_settings(s)
    yield s
    use_settings(None)


@pytest.fixture
def session_factory(engine: Engine, settings: Settings) -> Iterator[sessionmaker[Session]]:
    conn = engine.connect()
    outer = conn.begin()
    factory = make_sessionmaker(conn, join_transaction_mode="create_savepoint")
    yield factory
    outer.rollback()
    conn.close()


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    session = session_factory()
    yield session
    session.close()


@pytest.fixture
def app(settings: Settings, session_factory: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    return create_app(settings, session_factory)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as c:
        yield c


@pytest.fixture(autouse=True)
def _defaults() -> Iterator[None]:
    set_locale("zh_CN")
    cache.clear_all()  # ids come back after a rollback, and each backend has its own
    yield
    clock.set_now(None)
    set_locale("zh_CN")


@pytest.fixture
def committed_engine(database_url: str, tmp_path: Path, settings: Settings) -> Iterator[Engine]:
    """A database of this test alone where commits are real (for races between sessions)."""
    pg_schema = None
    if database_url.startswith("postgresql"):
        eng, pg_schema = private_schema_engine(database_url)
    else:
        eng = make_engine("sqlite:///" + str(tmp_path / "committed.db"))
    with eng.begin() as conn:
        schema.upgrade(connection=conn)
    yield eng
    eng.dispose()
    if pg_schema:
        with make_engine(database_url).begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{pg_schema}" CASCADE'))
