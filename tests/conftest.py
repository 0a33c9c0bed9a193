"""Fixtures shared by every test: a real Kafka-protocol broker, Redis, and databases.

The broker is the embedded tansu on a free port, started once per test session. Each test gets
its own topic names, so tests never see each other's messages and can run in any order.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from devserver.ports import free_port
from devserver.postgres import PostgresCluster, PostgresStartError, fresh_database
from devserver.processes import wait_until
from devserver.redis_credentials import RedisAccess
from devserver.redis_server import start_redis, wait_for_redis
from devserver.tansu import start_broker
from shared.config import RedisRole, redis_url_setting
from shared.kafka import wait_for_broker
from tests.auth import use_test_keys
from tests.kafka_fixtures import (  # noqa: F401
    apache_kafka,
    apache_kafka_cluster,
    kafka_authority,
    secured_kafka,
    ward,
)


def pytest_configure(config: pytest.Config) -> None:
    """Token keys of this session's own, for every app it creates or starts."""
    use_test_keys(Path(tempfile.mkdtemp(prefix="vigil-test-keys-")))


# Consumer settings that let the test broker assign partitions in about a second.
FAST_GROUP_SETTINGS = {"KAFKA_SESSION_TIMEOUT_MS": 2000}


@pytest.fixture(scope="session")
def tansu_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Address of the embedded broker (tansu), for the whole test session."""
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


@pytest.fixture
def kafka_engine(request: pytest.FixtureRequest) -> str:
    """The broker this test runs on: tansu unless the test is parametrised with both_brokers."""
    return getattr(request, "param", "tansu")


@pytest.fixture
def kafka_bootstrap(kafka_engine: str, request: pytest.FixtureRequest) -> str:
    """Address of a real broker shared by the whole test session (each test has its own
    topics and groups): tansu, or the session's Apache Kafka node."""
    if kafka_engine == "apache":
        return request.getfixturevalue("apache_kafka").bootstrap
    return request.getfixturevalue("tansu_bootstrap")


# Every test's REDIS_NAMESPACE matches it: the users' ACLs allow those namespaces' keys.
TEST_NAMESPACES = "test-*"


@pytest.fixture(scope="session")
def redis_users(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisAccess]:
    """A Redis of the tests' own (Debian's redis-server) for the whole test session, with
    Vigil's users (shared/redis_acl.py) and the default user off."""
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    access = RedisAccess.create(folder / "users", port, TEST_NAMESPACES)
    process = start_redis(port, access.acl_file, folder / "redis.log")
    try:
        wait_for_redis(access.admin_url)
        yield access
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def redis_settings(redis_users: RedisAccess) -> dict[str, str]:
    """Redis settings, every role with its own user, and a namespace of this test's own:
    keys, channel and queue. REDIS_URL has no user: whatever still used it would fail."""
    return {**redis_users.settings(), "REDIS_NAMESPACE": f"test-{uuid.uuid4().hex[:10]}"}


@pytest.fixture
def redis_admin(redis_users: RedisAccess) -> Iterator[redis.Redis]:
    """The session's Redis as its admin: for tests that look at, or plant, what apps wrote."""
    client = redis.Redis.from_url(redis_users.admin_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def unreachable_redis() -> dict[str, str]:
    """Redis settings of every role naming a port where nothing listens."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    return {"REDIS_URL": url, **{redis_url_setting(role): url for role in RedisRole}}


@pytest.fixture
def topic_names() -> dict[str, str]:
    """Topic names unique to this test."""
    suffix = uuid.uuid4().hex[:10]
    return {"KAFKA_TOPIC": f"vitals-{suffix}", "KAFKA_DLQ_TOPIC": f"vitals-{suffix}.dlq"}


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    # A file, never sqlite:// : each thread would get its own empty in-memory database.
    return f"sqlite:///{tmp_path / 'vigil.db'}"


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster | None]:
    """The private PostgreSQL cluster of the whole test session (it also speaks TLS, with its
    own CA), or None when VIGIL_TEST_POSTGRES_URL names a server to use instead. No database
    test is skipped for lack of one: the suite stops with the reason instead."""
    if os.environ.get("VIGIL_TEST_POSTGRES_URL"):
        yield None
        return
    # The suite's own connections stay plain, as before the cluster spoke TLS: a handshake on
    # each would slow every database test. libpq reads this only where a URL sets no sslmode;
    # tests/test_postgres_tls.py sets verify-full.
    os.environ.setdefault("PGSSLMODE", "disable")
    cluster = PostgresCluster()
    try:
        cluster.start()
    except PostgresStartError as exc:
        cluster.stop()
        pytest.exit(f"PostgreSQL could not be started: {exc}", returncode=1)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_server(postgres_cluster: PostgresCluster | None) -> str:
    """URL of a PostgreSQL server for the whole test session: the private cluster, or the
    server VIGIL_TEST_POSTGRES_URL names."""
    if postgres_cluster is None:
        return os.environ["VIGIL_TEST_POSTGRES_URL"]
    return postgres_cluster.url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for this test alone."""
    with fresh_database(postgres_server) as url:
        yield url


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
