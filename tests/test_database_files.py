"""The SQLite database holds patient data: its files are readable by their owner only."""

import logging
import os
import stat
from pathlib import Path

import pytest

from data_app import create_app
from shared.db import db, make_engine, migrate


@pytest.fixture(params=[0o022, 0o002, 0o000], ids=["umask-022", "umask-002", "umask-000"])
def umask(request: pytest.FixtureRequest):
    """Run the test under this umask, as a server started from a shell with it would."""
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_and_its_wal_files_are_private(tmp_path, umask, redis_settings):
    database = tmp_path / "data" / "vigil.db"
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{database}", **redis_settings})
    engine = db.engine(app)
    try:
        migrate(engine)
        # While a connection is open the -wal and -shm files exist.
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT count(*) FROM patients")
            files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
            files.append(Path(f"{database}.migrate.lock"))
            assert {path.name: oct(mode(path)) for path in files} == {
                path.name: "0o600" for path in files
            }
    finally:
        engine.dispose()


def test_an_existing_readable_database_is_reported(tmp_path, caplog):
    database = tmp_path / "vigil.db"
    database.touch(0o644)
    database.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="shared.db"):
        engine = make_engine(f"sqlite:///{database}")
        engine.connect().close()
        engine.dispose()
    assert "readable by others" in caplog.text
    # Its owner's choice is left alone.
    assert mode(database) == 0o644
