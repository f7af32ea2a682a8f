"""Database plumbing: the declarative Base, the engine factory and the unit of work.

Only this module makes engines (checked by tests/test_architecture.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, String, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite keeps no zone, so we restore it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def BinaryString(length: int) -> String:
    """A string compared byte by byte, so range scans on materialised paths work everywhere."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")  # type: ignore[return-value]


def make_engine(url: str, **kwargs: Any) -> Engine:
    """The engine for `url`; SQLite gets WAL, foreign keys and real transactions."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", 30)
        engine = create_engine(u, connect_args=connect_args, **kwargs)
        _sqlite_pragmas(engine)
        return engine
    if u.get_backend_name() == "postgresql" and u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(u, **kwargs)
    _postgres_prepared(engine)
    return engine


def _postgres_prepared(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # psycopg prepares a statement on the server once it ran 5 times; the default of
        # 100 kept per connection is fewer than the statements of a busy web process,
        # which then prepared and dropped the same ones over and over.
        dbapi_conn.prepared_max = 1000


def padded(values: Any) -> list[Any]:
    """`values` for an IN list, sorted and padded to a power of two with the last one
    repeated: the statement's text then takes one of a few shapes, which the database
    prepares once, instead of one per count (duplicates change nothing in an IN)."""
    out = sorted(set(values))
    size = 1
    while size < len(out):
        size *= 2
    return out + out[-1:] * (size - len(out))


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (savepoints work).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A writing unit of work takes the write lock up front: a deferred transaction
        # that reads, then writes after another writer committed, fails at once in WAL.
        immediate = conn.get_execution_options().get("kefu_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_sessionmaker(bind: Any, **kwargs: Any) -> sessionmaker[Session]:
    kwargs.setdefault("expire_on_commit", False)
    return sessionmaker(bind=bind, **kwargs)


@contextmanager
def unit_of_work(factory: sessionmaker[Session], write: bool = True) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error.

    `write=False` marks a unit of work that (mostly) reads, so SQLite need not take the
    write lock at its start.
    """
    session = factory()
    if write:
        session.connection(execution_options={"kefu_write": True})
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_postgres(session_or_engine: Session | Engine) -> bool:
    bind = (
        session_or_engine.get_bind()
        if isinstance(session_or_engine, Session)
        else session_or_engine
    )
    return bind.dialect.name == "postgresql"


def insert_rows(session: Session, cls: type, rows: list[dict[str, Any]]) -> None:
    """New rows of a model's table given as {column: value} (Python-side defaults fill what
    is missing, as an INSERT would), in the session's transaction: by COPY on PostgreSQL,
    one executemany INSERT elsewhere. For rows nobody reads back in the transaction."""
    from sqlalchemy import insert

    table = cls.__table__  # type: ignore[attr-defined]
    # Same keys in every row, so one statement serves them all (defaults fill the rest).
    shapes: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        shapes.setdefault(frozenset(row), []).append(row)
    for same in shapes.values():
        if is_postgres(session):
            _copy_rows(session, table, same)
        else:
            session.execute(insert(table), same)


def insert_with_ids(session: Session, objects: list[Any]) -> None:
    """Write new ORM objects of one class and keep them in the session as persistent, as a
    flush would. On PostgreSQL their ids are drawn from the table's sequence first (one
    query) and the rows go in by COPY: the ORM's multi-row INSERT … RETURNING cost a group
    of intakes a fifth of its time, and PostgreSQL parsed and planned it anew for every
    group size. Python-side column defaults are applied as the ORM would; a class with a
    server-side default it would have to read back is flushed as usual."""
    from sqlalchemy import inspect
    from sqlalchemy.orm import make_transient_to_detached

    if not objects:
        return
    cls = type(objects[0])
    mapper = inspect(cls)
    table = cls.__table__
    columns = [(prop.key, prop.columns[0]) for prop in mapper.column_attrs]
    if not is_postgres(session) or any(
        c.server_default is not None and c.default is None and not c.primary_key for _, c in columns
    ):
        session.add_all(objects)
        session.flush()
        return
    ids = session.scalars(
        text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
        {"t": table.name, "n": len(objects)},
    ).all()
    version = mapper.version_id_col
    rows = []
    for obj, new_id in zip(objects, ids, strict=True):
        state = inspect(obj)
        obj.id = new_id
        for key, column in columns:
            if key in state.dict:
                continue
            first_version = version is not None and column is version
            setattr(obj, key, 1 if first_version else _default(column))
        rows.append({column.key: state.dict[key] for key, column in columns})
    _copy_rows(session, table, rows)
    for obj in objects:
        make_transient_to_detached(obj)
        session.add(obj)


def _default(column: Any) -> Any:
    """A column's Python-side default for a new row (None without one), as an INSERT would
    apply it."""
    if column.default is None:
        return None
    return column.default.arg(None) if column.default.is_callable else column.default.arg


def _copy_rows(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Rows into a PostgreSQL table by COPY, in the session's transaction: a tenth of the
    client's work of an INSERT per row. Python-side column defaults and the columns' own
    conversions (JSON, UTC times) are applied as an INSERT would."""
    raw = session.connection().connection.driver_connection
    assert raw is not None
    given = tuple(rows[0])
    key = (table.name, given)
    plan = _COPY_PLANS.get(key)
    if plan is None:
        plan = _COPY_PLANS[key] = _copy_plan(session, raw, table, given)
    statement, defaulted, convert = plan
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            values = [row[k] for k in given] + [_default(c) for c in defaulted]
            copy.write_row(
                [
                    v if f is None or v is None else f(v)
                    for v, f in zip(values, convert, strict=True)
                ]
            )


# COPY statements and column conversions by (table, columns given): the same few shapes
# come again in every intake group.
_COPY_PLANS: dict[tuple[str, tuple[str, ...]], tuple[bytes, list[Any], list[Any]]] = {}


def _copy_plan(
    session: Session, raw: Any, table: Any, given: tuple[str, ...]
) -> tuple[bytes, list[Any], list[Any]]:
    from psycopg import sql

    dialect = session.get_bind().dialect
    defaulted = [c for c in table.columns if c.key not in given and c.default is not None]
    columns = [table.c[k] for k in given] + defaulted
    convert = [c.type._cached_bind_processor(dialect) for c in columns]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
    )
    return statement.as_bytes(raw), defaulted, convert
