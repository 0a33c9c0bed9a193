"""SQLite's write-lock waits happen in Python (where gevent can yield), and still wait."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from shared.db import make_engine
from shared.sqlite_waits import WAIT_SECONDS, waiting


@pytest.fixture
def path(tmp_path: Path) -> Path:
    database = tmp_path / "vigil.db"
    with sqlite3.connect(database) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (n INTEGER)")
    return database


def holder(path: Path) -> sqlite3.Connection:
    """A connection holding the write lock until it commits."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("INSERT INTO t VALUES (0)")
    return connection


def test_a_write_that_finds_the_lock_taken_pauses_in_python_then_goes_through(path):
    lock = holder(path)
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 3:
            lock.commit()  # the other writer finishes while this one waits

    waiter = sqlite3.connect(path, timeout=0)  # SQLite itself gives up at once
    waiting(lambda: waiter.execute("INSERT INTO t VALUES (1)"), sleep=pause)
    waiter.commit()

    assert len(pauses) == 3 and pauses == sorted(pauses)
    assert sorted(n for (n,) in waiter.execute("SELECT n FROM t")) == [0, 1]


def test_the_wait_ends_with_sqlites_error_once_it_has_lasted_its_time(path):
    lock = holder(path)
    waited: list[float] = []
    waiter = sqlite3.connect(path, timeout=0)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            waiting(lambda: waiter.execute("INSERT INTO t VALUES (1)"), sleep=waited.append)
    finally:
        lock.rollback()
    assert WAIT_SECONDS <= sum(waited) < WAIT_SECONDS + 1


def test_other_errors_are_not_retried(path):
    calls: list[float] = []
    waiter = sqlite3.connect(path)
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        waiting(lambda: waiter.execute("INSERT INTO nowhere VALUES (1)"), sleep=calls.append)
    assert calls == []


def test_vigils_engine_waits_for_another_writer_in_python(path):
    """SQLite itself gives up at once (busy_timeout 0); the statement still succeeds once the
    other writer commits, from another thread meanwhile."""
    engine = make_engine(f"sqlite:///{path}")
    lock = holder(path)
    released = threading.Timer(0.2, lock.commit)  # the other writer's transaction, elsewhere
    try:
        with engine.begin() as connection:
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 0
            released.start()
            connection.execute(text("INSERT INTO t VALUES (1)"))
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 2
    finally:
        released.join()
        engine.dispose()
