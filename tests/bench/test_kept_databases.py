"""The query benchmarks' large databases: built once, kept by recipe, measured as copies."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from bench import query_data, query_pg_data, recipes


def _scalar(url: str, sql: str, autocommit: bool = False):
    engine = create_engine(
        url, poolclass=NullPool, isolation_level="AUTOCOMMIT" if autocommit else None
    )
    try:
        with engine.connect() as connection:
            result = connection.execute(text(sql))
            value = result.scalar() if result.returns_rows else None
            connection.commit()
            return value
    finally:
        engine.dispose()


def _databases(server_url: str) -> set[str]:
    engine = create_engine(server_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return set(connection.execute(text("SELECT datname FROM pg_database")).scalars())
    finally:
        engine.dispose()


def test_a_recipe_s_digest_changes_with_any_of_its_parts_and_their_boundaries():
    assert recipes.digest(["SELECT 1", 5]) == recipes.digest(["SELECT 1", 5])
    assert recipes.digest(["SELECT 1", 5]) != recipes.digest(["SELECT 2", 5])
    assert recipes.digest(["ab", "c"]) != recipes.digest(["a", "bc"])
    assert query_pg_data.recipe(50) != query_pg_data.recipe(5_000)
    assert recipes.head_revision()


@pytest.fixture
def kept_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(query_data, "CACHE_DIR", tmp_path / "query-db")
    return tmp_path / "query-db"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_sqlite_database_is_built_once_then_reused_and_each_run_writes_only_a_copy(
    kept_files: Path,
):
    built = query_data.database(3, 10)
    assert not built.cached and built.rows == 30
    assert built.path.parent == kept_files and query_data.recipe(3, 10) in built.path.name
    before = _digest(built.path)
    with query_data.working_copy(query_data.database(3, 10)) as copy:
        assert copy.cached and copy.path != built.path
        with sqlite3.connect(copy.path) as connection:
            connection.execute("DELETE FROM patient_metrics")
        copied = copy.path
    assert not copied.exists()
    assert _digest(built.path) == before
    assert "reused" in query_data.describe(query_data.database(3, 10))


def test_stale_sqlite_files_are_removed_and_current_ones_kept(kept_files: Path):
    current = query_data.database(2, 5)
    other_size = query_data.database(3, 5)
    old = [kept_files / f"vigil-2x5-000000000000.{suffix}" for suffix in ("db", "json")]
    unfinished = current.path.with_suffix(".building")
    for path in (*old, unfinished):
        path.write_text("")
    removed = query_data.remove_stale()
    assert sorted(removed) == sorted(path.name for path in (*old, unfinished))
    assert current.path.exists() and other_size.path.exists()


def test_a_postgres_database_is_built_once_then_reused_and_each_run_writes_only_a_copy(
    postgres_server: str,
):
    name = query_pg_data.kept_name(2)
    try:
        built = query_pg_data.kept_database(postgres_server, 2)
        assert (built.name, built.reused, built.rows) == (name, False, 2_000)
        with query_pg_data.working_copy(postgres_server, 2) as copy:
            assert copy.kept.reused and copy.kept.until == built.until
            assert _scalar(copy.url, "SELECT count(*) FROM patient_metrics") == 2_000
            _scalar(copy.url, "DELETE FROM patient_metrics")
        kept_url = postgres_server.rsplit("/", 1)[0] + f"/{name}"
        assert _scalar(kept_url, "SELECT count(*) FROM patient_metrics") == 2_000
        assert _scalar(kept_url, "SELECT sum(sample_count) FROM patients") == 2_000
    finally:
        _scalar(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', True)


def test_stale_postgres_databases_are_dropped_and_nothing_else(postgres_server: str):
    # One of an older recipe, one left by an interrupted build, one whose name holds a quote
    # (dropped as it is, not read as SQL), and a database that is not the benchmark's.
    stale = ["bench_query_2_000000000000", f"{query_pg_data.kept_name(2)}_building"]
    hostile = 'bench_query_2_x" WITH (FORCE); DROP DATABASE "not_the_bench'
    for name in (*stale, hostile, "not_the_bench"):
        quoted = name.replace('"', '""')
        _scalar(postgres_server, f'CREATE DATABASE "{quoted}"', True)
    try:
        dropped = query_pg_data.drop_stale(postgres_server)
        assert set(dropped) >= {*stale, hostile}
        left = _databases(postgres_server)
        assert "not_the_bench" in left and not left & {*stale, hostile}
    finally:
        _scalar(postgres_server, 'DROP DATABASE IF EXISTS "not_the_bench"', True)
