"""The schema: Alembic's migrations and the models agree, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.dialects import sqlite

from shared.db import Base, UTCDateTime, make_engine, migrate
from shared.partitions import include_name


@pytest.fixture
def engine(empty_database_url):
    engine = make_engine(empty_database_url)
    yield engine
    engine.dispose()


def test_migrations_build_exactly_the_models_schema(engine):
    migrate(engine)
    migrate(engine)  # a second start finds nothing to do
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": include_name})
        assert compare_metadata(context, Base.metadata) == []
        unique = inspect(connection).get_unique_constraints("patient_metrics")
    assert [c["column_names"] for c in unique] == [["patient_id", "timestamp"]]


def test_sqlite_runs_in_wal_mode(sqlite_url):
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            # Lock waits happen in Python (shared/sqlite_waits.py), not in SQLite's handler.
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 0
    finally:
        engine.dispose()


def test_in_memory_sqlite_is_refused():
    with pytest.raises(ValueError, match="DATABASE_URL"):
        make_engine("sqlite://")


def test_datetimes_are_stored_as_utc_and_come_back_aware():
    column = UTCDateTime()
    moscow = datetime(2026, 11, 24, 15, 0, tzinfo=timezone(timedelta(hours=3)))
    stored = column.process_bind_param(moscow, None)
    assert stored == datetime(2026, 11, 24, 12, 0)
    assert column.process_result_value(stored, None) == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="naive"):
        column.process_bind_param(datetime(2026, 11, 24, 12, 0), None)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
        datetime(2026, 11, 24, 15, 0, 0, 5, tzinfo=timezone(timedelta(hours=3))),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ],
)
def test_sqlite_text_of_a_datetime_is_what_sqlalchemy_writes(moment):
    dialect = sqlite.dialect()
    written = UTCDateTime()._cached_bind_processor(dialect)(moment)
    sqlalchemys = sqlite.DATETIME().bind_processor(dialect)
    assert written == sqlalchemys(moment.astimezone(UTC).replace(tzinfo=None))
    assert UTCDateTime()._cached_result_processor(dialect, None)(written) == moment


def test_sqlite_refuses_a_naive_datetime_as_before():
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime()._cached_bind_processor(sqlite.dialect())(datetime(2026, 11, 24, 12, 0))
