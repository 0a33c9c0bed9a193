"""Engine, sessions and schema migration, for SQLite (default) and PostgreSQL.

Requests get one session per app context, closed at teardown; background threads open their
own with `Database.sessionmaker.begin()` per unit of work.
"""

from __future__ import annotations

import fcntl
import logging
import os
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, current_app, g
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from shared.sqlite_waits import WaitingConnection

log = logging.getLogger(__name__)

# Predictable constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class _SQLiteDateTime(sqlite.DATETIME):
    """SQLite's DATETIME, taking the text UTCDateTime already wrote as it is.

    That text is `isoformat`'s: the same characters as DATETIME's storage format, for a
    fraction of the instructions of its %-format and of making a naive copy first (data_app
    writes two a sample)."""

    def bind_processor(self, dialect):  # noqa: ANN001, ANN201  (SQLAlchemy's signature)
        general = super().bind_processor(dialect)

        def process(value: object) -> object:
            return value if type(value) is str else general(value)

        return process


# What UTCDateTime writes on SQLite must stay what SQLite's DATETIME would.
assert _SQLiteDateTime()._storage_format == (  # noqa: S101
    "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"
)


class UTCDateTime(TypeDecorator):
    """Stores UTC without a zone (same on SQLite and PostgreSQL); returns aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):  # noqa: ANN001, ANN201  (SQLAlchemy's signature)
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SQLiteDateTime())
        return super().load_dialect_impl(dialect)

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Vigil stores only aware UTC datetimes")
        utc = value.astimezone(UTC)
        if dialect is not None and dialect.name == "sqlite":
            # DATETIME's text of the naive value: the aware one's, less its "+00:00".
            return utc.isoformat(" ", "microseconds")[:-6]
        return utc.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_engine(url: str) -> Engine:
    """An engine tuned for the backend: SQLite in WAL mode so a writer and readers coexist."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    if parsed.database in (None, "", ":memory:"):
        # Each thread would get its own empty in-memory database.
        raise ValueError("DATABASE_URL: SQLite needs a file path, not an in-memory database")
    # The connect-time pragmas below wait for locks in SQLite (timeout); statements after
    # them wait in Python (shared/sqlite_waits.py).
    engine = create_engine(
        url,
        connect_args={"timeout": 30, "check_same_thread": False, "factory": WaitingConnection},
    )

    @event.listens_for(engine, "do_connect")
    def _private_file(_dialect, _record, _cargs, _cparams) -> None:
        # At the first connection, not here: an app factory creates engines and must touch
        # nothing (a pre-forking server calls it).
        path = Path(parsed.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        _create_private(path)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.close()

    return engine


# Patient data: only the owner reads the database file.
PRIVATE_FILE_MODE = 0o600


def _create_private(path: Path) -> None:
    """Create `path` readable by its owner only, whatever the umask, unless it exists.

    SQLite gives the -wal and -shm files the database file's permissions, so they follow. An
    existing file is left as it is (its owner chose), with a warning if others may read it.
    """
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE_MODE))
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            log.warning(
                "database file is readable by others: chmod 600 it",
                extra={"database": str(path)},
            )


@contextmanager
def _migration_lock(engine: Engine):
    """Serialise migrations when several processes start at once."""
    if engine.dialect.name == "sqlite":
        lock_path = Path(engine.url.database + ".migrate.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w", opener=_private_opener) as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                with engine.begin() as connection:
                    yield connection
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
    else:
        with engine.begin() as connection:
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(4242001)")
            yield connection


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, PRIVATE_FILE_MODE)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with _migration_lock(engine) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    log.info("database schema is up to date", extra={"database": engine.url.render_as_string()})


class Database:
    """The database of one Flask app: its engine, session factory and request session."""

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        # create_engine connects lazily: the factory still opens no connection.
        engine = make_engine(app.config["DATABASE_URL"])
        app.extensions["vigil.db"] = {
            "engine": engine,
            "sessionmaker": sessionmaker(engine, expire_on_commit=False),
        }
        app.teardown_appcontext(self._close_session)

    @staticmethod
    def _state(app: Flask | None = None) -> dict:
        return (app or current_app).extensions["vigil.db"]

    def engine(self, app: Flask | None = None) -> Engine:
        return self._state(app)["engine"]

    def sessionmaker(self, app: Flask | None = None) -> sessionmaker[Session]:
        return self._state(app)["sessionmaker"]

    @property
    def session(self) -> Session:
        """The session of the current app context, opened on first use."""
        if "db_session" not in g:
            g.db_session = self.sessionmaker()()
        return g.db_session

    def release(self) -> None:
        """Close the current app context's session, returning its connection to the pool.

        A request that needs a second connection after its view (the audit row) releases the
        first before taking it: holding both, as many threads as the pool has connections
        would each wait for one that none of them gives back.
        """
        self._close_session(None)

    @staticmethod
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


db = Database()


class SchemaMigration:
    """A background 'service' that migrates the schema when the server starts serving.

    Registered by every app that touches the database, so whichever starts first creates the
    tables, and none does it in its factory (which must not connect).
    """

    def __init__(self, app: Flask) -> None:
        self.app = app

    def start(self) -> None:
        migrate(db.engine(self.app))

    def stop(self, timeout: float = 10.0) -> None:
        db.engine(self.app).dispose()
