"""What someone who can write to Redis, or send any URL, can do to monitor_app's cache:
neither run code through a planted value nor grow Redis with junk query strings."""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from monitor_app import create_app
from shared.db import db, migrate

URL = "/api/v1/patients"


@pytest.fixture
def app(sqlite_url: str, redis_settings: dict[str, str]) -> Iterator[Flask]:
    """The monitor API on SQLite (the cache does not depend on the database)."""
    app = create_app(
        {"DATABASE_URL": sqlite_url, "TESTING": True, **redis_settings, "RATELIMIT_ENABLED": False}
    )
    migrate(db.engine(app))
    yield app
    db.engine(app).dispose()


@pytest.fixture
def cache_keys(redis_admin: redis.Redis, redis_settings: dict[str, str]) -> Callable[[], list]:
    """The cache's keys in this test's namespace (read as the admin)."""
    pattern = f"{redis_settings['REDIS_NAMESPACE']}:cache:*"
    return lambda: sorted(redis_admin.scan_iter(match=pattern, count=1000))


class CreatesFile:
    """Unpickling this runs `touch <path>`: what a planted pickle could do as the server."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.path}",))


def test_a_pickle_planted_under_a_cache_key_is_never_run(
    client: FlaskClient,
    make_patient: Callable,
    redis_admin: redis.Redis,
    cache_keys: Callable[[], list],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    patient = make_patient("Olga Smirnova", samples=1)
    first = client.get(URL)
    assert (first.status_code, first.headers["X-Cache"]) == (200, "miss")
    [key] = cache_keys()
    ran = tmp_path / "pwned"
    payload = pickle.dumps(CreatesFile(ran))
    # Flask-Caching's RedisCache unpickles values that start with "!".
    for planted in (b"!" + payload, payload):
        redis_admin.set(key, planted, ex=60)
        with caplog.at_level(logging.WARNING, logger="monitor_app.json_cache"):
            caplog.clear()
            answer = client.get(URL)
        assert not ran.exists()
        assert (answer.status_code, answer.headers["X-Cache"]) == (200, "miss")
        assert [p["uuid"] for p in answer.json] == [patient.uuid]  # from the database
        assert [r.message for r in caplog.records] == ["ignored a cached value that is not JSON"]
        # The miss stored a good value over it: the next request is a hit, and logs nothing.
        assert client.get(URL).headers["X-Cache"] == "hit"
        assert redis_admin.get(key).startswith(b"{")


def test_junk_query_strings_make_no_cache_entries(
    client: FlaskClient, make_patient: Callable, cache_keys: Callable[[], list]
) -> None:
    make_patient("Olga Smirnova", samples=1)
    answers = [client.get(f"{URL}?junk{i}=x&_={i}") for i in range(200)]
    assert {a.status_code for a in answers} == {200}
    # One entry: the parameters the view does not declare are not part of its key.
    assert len(cache_keys()) == 1
    assert [a.headers["X-Cache"] for a in answers[:2]] == ["miss", "hit"]
    # Declared arguments are, canonically: page=1 is the first page, as is no page at all.
    assert client.get(f"{URL}?page=1&page_size=50").headers["X-Cache"] == "hit"
    assert client.get(f"{URL}?page_size=10").headers["X-Cache"] == "miss"
    assert len(cache_keys()) == 2
    # An invalid argument is refused by the view, and caches nothing.
    assert client.get(f"{URL}?page=zero").status_code == 422
    assert len(cache_keys()) == 2


def test_one_query_written_differently_is_one_entry(client: FlaskClient) -> None:
    first = client.get("/api/v1/notifications?read=true&category=info&junk=1")
    assert (first.status_code, first.headers["X-Cache"]) == (200, "miss")
    # The same arguments in another order and spelling, without the junk.
    again = client.get("/api/v1/notifications?category=info&read=1")
    assert again.headers["X-Cache"] == "hit"
    assert client.get("/api/v1/notifications?category=info&read=false").headers["X-Cache"] == (
        "miss"
    )


def test_every_cache_entry_expires(
    client: FlaskClient,
    make_patient: Callable,
    redis_admin: redis.Redis,
    cache_keys: Callable[[], list],
) -> None:
    make_patient("Olga Smirnova", samples=1)
    assert client.get(URL).status_code == 200
    assert client.get("/api/v1/notifications").status_code == 200
    keys = cache_keys()
    assert len(keys) >= 3  # the patients, the notifications and their count
    # Only keys with a TTL can be evicted by volatile-lru; none may live for ever.
    assert all(0 < redis_admin.ttl(key) <= 60 for key in keys)
