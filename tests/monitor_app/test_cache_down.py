"""monitor_app with its cache's Redis down (what bench/query.py's uncached workload is served
by): every read comes from the database, at once, with one warning rather than one a request."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from devserver.ports import free_port
from monitor_app import create_app
from shared.config import RedisRole, redis_url_setting
from shared.db import db, migrate
from shared.events import REDIS_TIMEOUT_SECONDS

URL = "/api/v1/patients"
READS = 20


@pytest.fixture
def app(sqlite_url: str, redis_settings: dict[str, str]) -> Iterator[Flask]:
    """The monitor API whose cache user's URL names a port where nothing listens (events,
    and so the cache generations, still work)."""
    closed = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(
        {
            "DATABASE_URL": sqlite_url,
            "TESTING": True,
            **redis_settings,
            redis_url_setting(RedisRole.CACHE): closed,
            "RATELIMIT_ENABLED": False,
        }
    )
    migrate(db.engine(app))
    yield app
    db.engine(app).dispose()


def test_every_read_misses_and_reads_the_database(
    client: FlaskClient, make_patient: Callable, caplog: pytest.LogCaptureFixture
) -> None:
    make_patient("Olga Smirnova")
    with caplog.at_level(logging.WARNING, logger="monitor_app.caching"):
        started = time.monotonic()
        answers = [client.get(URL) for _ in range(READS)]
        elapsed = time.monotonic() - started
        make_patient("Ada Lovelace")  # no generation bump: a cached page would not show her
        last = client.get(URL)
    assert {(a.status_code, a.headers["X-Cache"]) for a in answers} == {(200, "miss")}
    names = sorted(patient["name"] for patient in last.get_json())
    assert (last.headers["X-Cache"], names) == ("miss", ["Ada Lovelace", "Olga Smirnova"])
    # A refused connection, not a connect timeout waited out at each read.
    assert elapsed < READS * REDIS_TIMEOUT_SECONDS / 4
    # One a half-minute (none if an earlier test of this process warned just before).
    warnings = [r for r in caplog.records if r.name == "monitor_app.caching"]
    assert len(warnings) <= 1
