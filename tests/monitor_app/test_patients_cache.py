"""The patients list stays cached while samples flow: a stored batch of known patients leaves
the cached page in place (their newest samples are read afresh), a batch that brings a new
patient replaces it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from data_app import create_app as create_data_app
from data_app.services import DataService
from shared.db import db
from shared.sample import VitalsSample

URL = "/api/v1/patients"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def store(app: Flask, database_url: str, redis_settings: dict[str, str]) -> Iterator[Callable]:
    """Store a batch as data_app's consumer does, on the monitor's database and namespace."""
    data = create_data_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
            **redis_settings,
        }
    )
    service = DataService(data)
    yield service.store
    db.engine(data).dispose()


@pytest.fixture
def cache_keys(redis_admin: redis.Redis, redis_settings: dict[str, str]) -> Callable[[], list]:
    pattern = f"{redis_settings['REDIS_NAMESPACE']}:cache:*"
    return lambda: sorted(redis_admin.scan_iter(match=pattern, count=1000))


def batch(patients: dict[uuid.UUID, str], at: datetime, pulse: int = 70) -> list[VitalsSample]:
    return [
        VitalsSample(
            patient_uuid=patient_uuid,
            patient_name=name,
            timestamp=at,
            pulse=pulse,
            resp_rate=14,
            systolic=120,
            diastolic=80,
            spo2=97,
            temperature=36.6,
        )
        for patient_uuid, name in patients.items()
    ]


def newest_pulses(answer) -> dict[str, int | None]:
    return {p["name"]: (p["latest"] or {}).get("pulse") for p in answer.get_json()}


def test_samples_of_known_patients_keep_the_page_cached_and_show_fresh(
    client: FlaskClient, store: Callable
) -> None:
    ward = {uuid.uuid4(): "Olga Smirnova", uuid.uuid4(): "Ivan Petrov"}
    assert store(batch(ward, NOW - timedelta(seconds=30))) == 2
    first = client.get(URL)
    assert (first.status_code, first.headers["X-Cache"]) == (200, "miss")
    for second in range(1, 4):
        assert store(batch(ward, NOW - timedelta(seconds=30 - second), pulse=70 + second)) == 2
        answer = client.get(URL)
        # The page came from the cache, the newest samples did not.
        assert answer.headers["X-Cache"] == "hit"
        assert newest_pulses(answer) == {"Ivan Petrov": 70 + second, "Olga Smirnova": 70 + second}
    assert answer.headers["X-Pagination"] == first.headers["X-Pagination"]


def test_a_batch_with_a_new_patient_replaces_the_page(client: FlaskClient, store: Callable) -> None:
    known = {uuid.uuid4(): "Olga Smirnova"}
    store(batch(known, NOW - timedelta(seconds=10)))
    assert client.get(URL).headers["X-Cache"] == "miss"
    assert client.get(URL).headers["X-Cache"] == "hit"
    store(batch({**known, uuid.uuid4(): "Anna Ivanova"}, NOW - timedelta(seconds=5)))
    answer = client.get(URL)
    assert answer.headers["X-Cache"] == "miss"
    assert [p["name"] for p in answer.get_json()] == ["Anna Ivanova", "Olga Smirnova"]
    assert '"total": 2' in answer.headers["X-Pagination"]


def test_a_replayed_batch_changes_nothing(client: FlaskClient, store: Callable) -> None:
    ward = {uuid.uuid4(): "Olga Smirnova"}
    samples = batch(ward, NOW - timedelta(seconds=10))
    store(samples)
    client.get(URL)
    assert store(samples) == 0
    assert client.get(URL).headers["X-Cache"] == "hit"


@pytest.mark.parametrize(
    "planted",
    [
        b'{"count": 0, "patients": [[1, "not-a-uuid", "Eve", "2025-01-01T00:00:00+00:00"]]}',
        b'{"count": 5, "patients": [[1, "%s", "Eve", "2025-01-01T00:00:00"]]}',
        b'{"count": "5", "patients": []}',
        b'{"count": true, "patients": []}',
        b'{"count": 1, "patients": [["1", "%s", "Eve", "2025-01-01T00:00:00+00:00"]]}',
        b'{"count": 1, "patients": [[1, "%s", "Eve"]]}',
        b'{"count": 1, "patients": [[1, 5, "Eve", "2025-01-01T00:00:00+00:00"]]}',
        b'{"count": 1, "patients": {"a": 1}}',
        b"[1, 2, 3]",
        b'"patients"',
    ],
)
def test_a_value_planted_under_the_page_key_is_never_served(
    client: FlaskClient,
    store: Callable,
    redis_admin: redis.Redis,
    cache_keys: Callable[[], list],
    planted: bytes,
) -> None:
    ward = {uuid.uuid4(): "Olga Smirnova"}
    store(batch(ward, NOW - timedelta(seconds=10)))
    assert client.get(URL).headers["X-Cache"] == "miss"
    [key] = cache_keys()
    redis_admin.set(key, planted.replace(b"%s", str(uuid.uuid4()).encode()), ex=60)
    answer = client.get(URL)
    # Read from the database, and stored over what was planted.
    assert answer.headers["X-Cache"] == "miss"
    assert [p["name"] for p in answer.get_json()] == ["Olga Smirnova"]
    assert client.get(URL).headers["X-Cache"] == "hit"
