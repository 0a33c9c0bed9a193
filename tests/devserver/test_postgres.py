"""The tests' private PostgreSQL: found, started, a database per test, a clear error otherwise."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from devserver import postgres
from devserver.postgres import PostgresStartError, fresh_database


def _scalar(url: str, sql: str):
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            result = connection.execute(text(sql))
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def test_missing_server_binaries_say_how_to_fix_it(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(postgres, "POSTGRES_ROOTS", (tmp_path,))
    with pytest.raises(PostgresStartError, match="apt-get install postgresql"):
        postgres.find_bin_dir()


def test_each_fresh_database_is_empty_its_own_and_dropped_afterwards(postgres_server: str):
    with fresh_database(postgres_server) as first, fresh_database(postgres_server) as second:
        assert first != second
        _scalar(first, "CREATE TABLE only_here (x int)")
        assert _scalar(first, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'")
        assert not _scalar(second, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'")
        name = first.rsplit("/", 1)[1]
    assert not _scalar(
        postgres_server, f"SELECT count(*) FROM pg_database WHERE datname = '{name}'"
    )


def test_a_second_cluster_starts_on_its_own_port_and_leaves_nothing_behind():
    with postgres.PostgresCluster() as cluster:
        assert _scalar(cluster.url, "SHOW fsync") == "off"
        folder = cluster.folder
    assert not folder.exists()


def test_a_kept_cluster_keeps_its_databases_from_one_start_to_the_next():
    # Not under tmp_path: as root the server runs as `postgres`, who cannot enter pytest's
    # private folders. The cluster hands its own folder to that user.
    folder = Path(tempfile.mkdtemp(prefix="vigil-kept-postgres-"))
    try:
        with postgres.PostgresCluster(folder=folder) as cluster:
            _scalar(cluster.url, "CREATE TABLE kept_here (x int)")
        assert (folder / "data" / "PG_VERSION").exists()
        with postgres.PostgresCluster(folder=folder) as cluster:
            found = "SELECT count(*) FROM pg_tables WHERE tablename = 'kept_here'"
            assert _scalar(cluster.url, found) == 1
        assert not (folder / "data" / "postmaster.pid").exists()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_copy_by_file_copy_holds_the_template_s_rows(postgres_server: str):
    with fresh_database(postgres_server) as template_url:
        _scalar(template_url, "CREATE TABLE rows_here AS SELECT generate_series(1, 10) AS n")
        template = template_url.rsplit("/", 1)[1]
        with fresh_database(postgres_server, template=template, strategy="FILE_COPY") as url:
            assert _scalar(url, "SELECT sum(n) FROM rows_here") == 55


@pytest.mark.parametrize("strategy", ["FILE_COPY; DROP DATABASE postgres", "file_copy", ""])
def test_a_strategy_that_is_not_one_of_postgres_s_is_refused(postgres_server: str, strategy):
    with (
        pytest.raises(ValueError, match="strategy"),
        fresh_database(postgres_server, template="template1", strategy=strategy),
    ):
        pass
