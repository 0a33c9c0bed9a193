"""Fixtures shared by every test: a real Kafka-protocol broker, Redis, and databases.

The broker is the embedded tansu on a free port, started once per test session. Each test gets
its own topic names, so tests never see each other's messages and can run in any order.

The suite runs in WORKERS processes (pytest-xdist) unless told otherwise (`-n 0`, `-n 3`,
`-p no:xdist`, `--pdb`). A session is one worker's: each starts its own tansu, Redis and
PostgreSQL, and has its own temporary folders and token keys. The servers that are slow to
start or heavy to run (the Apache Kafka JVMs, the browser's whole system) are each started by
one worker only: their tests are one xdist group each (see `xdist_group_of`), as are the tests
of a module or class sharing a fixture of that scope.
"""

from __future__ import annotations

import collections
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy.engine import make_url

from devserver.ports import free_port
from devserver.postgres import PostgresCluster, PostgresStartError, fresh_database
from devserver.processes import wait_until
from devserver.redis_credentials import RedisAccess
from devserver.redis_server import start_redis, wait_for_redis
from devserver.tansu import start_broker
from shared.config import RedisRole, redis_url_setting
from shared.db import make_engine, migrate
from shared.kafka import wait_for_broker
from tests.auth import use_test_keys
from tests.kafka_fixtures import (  # noqa: F401
    apache_kafka,
    apache_kafka_cluster,
    kafka_authority,
    secured_kafka,
    ward,
)

# Worker processes when the command line names none: CI's two cores.
WORKERS = 2
# The session fixtures whose servers one worker alone should start, each with its tests' group.
HEAVY_FIXTURE_GROUPS = {
    "apache_kafka_cluster": "apache-kafka-cluster",
    "secured_kafka": "secured-kafka",
    "browser": "browser",
    "apache_kafka": "apache-kafka",
}
# Modules whose tests start Apache Kafka clusters of their own and kill their nodes: with the
# session's cluster, so that no two JVM clusters compete for the CPU and miss their deadlines.
KAFKA_CLUSTER_MODULES = {"tests/test_kafka_durability.py", "tests/devserver/test_apache_kafka.py"}
# Fixture scopes wider than a test and narrower than the session, with the node they belong to.
SHARED_SCOPES = {"class": pytest.Class, "module": pytest.Module, "package": pytest.Package}
_KEYS = pytest.StashKey[Path]()


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Run in WORKERS processes, tests grouped (`--dist loadgroup`), unless the command line
    says how: `-n N`, `-n 0` or `-p no:xdist` (in this process), `--dist MODE`, `--pdb`."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    option = config.option
    if hasattr(config, "workerinput"):
        # A worker: xdist has reset its options, so the controller tells it to name groups.
        if config.workerinput.get("vigil_loadgroup"):
            option.loadgroup = True
        return
    if option.numprocesses is None and not option.tx and option.dist == "no":
        if not option.usepdb and not option.collectonly:
            option.numprocesses = WORKERS
    if option.numprocesses and option.dist == "no":
        option.dist = "loadgroup"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist's hook, for each worker it starts: whether the worker should name the groups."""
    node.workerinput["vigil_loadgroup"] = node.config.option.dist == "loadgroup"


def xdist_group_of(item: pytest.Item) -> str | None:
    """The xdist group `item` runs in: that of the heavy session server it uses, else that of
    the module or class whose fixture it shares; None for a test that may run anywhere."""
    names = item.fixturenames
    for fixture, group in HEAVY_FIXTURE_GROUPS.items():
        if fixture in names:
            return group
    if item.nodeid.split("::", 1)[0] in KAFKA_CLUSTER_MODULES:
        return HEAVY_FIXTURE_GROUPS["apache_kafka_cluster"]
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("kafka_engine") == "apache":
        return HEAVY_FIXTURE_GROUPS["apache_kafka"]  # kafka_bootstrap asks for it by name
    definitions = item._fixtureinfo.name2fixturedefs
    for scope, node_type in SHARED_SCOPES.items():
        if any(definitions[name][-1].scope == scope for name in names if name in definitions):
            parent = item.getparent(node_type)
            if parent is not None:
                return parent.nodeid
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its xdist group (before xdist reads the marks).

    Tests that share a node id (schemathesis makes one test of each API operation, all with
    the test function's id) get ids of their own: xdist's group scheduling keys tests by id and
    would run only one of them."""
    counts = collections.Counter(item.nodeid for item in items)
    for item in items:
        if counts[item.nodeid] > 1 and item.parent is not None:
            item._id = item.parent.id.child(item.name)
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            group = xdist_group_of(item)
            if group is not None:
                item.add_marker(pytest.mark.xdist_group(group))
        # The group is told to the scheduler as the id's "@group" suffix. xdist 3.8 sets
        # `_nodeid`, which pytest 9 no longer reads: the suffix is added here instead.
        mark = item.get_closest_marker("xdist_group")
        if config.getoption("loadgroup", False) and mark is not None and "@" not in item.nodeid:
            group = mark.args[0] if mark.args else mark.kwargs.get("name", "default")
            item._id = type(item.id).parse(f"{item.nodeid}@{group}")


def pytest_configure(config: pytest.Config) -> None:
    """Token keys of this session's own, for every app it creates or starts (in each worker
    its own; the controller of workers runs no test)."""
    if config.getoption("dist", "no") != "no" and config.getoption("tx", None):
        return  # the controller (a worker's options say "no")
    config.stash[_KEYS] = Path(tempfile.mkdtemp(prefix="vigil-test-keys-"))
    use_test_keys(config.stash[_KEYS])


def pytest_unconfigure(config: pytest.Config) -> None:
    if keys := config.stash.get(_KEYS, None):
        shutil.rmtree(keys, ignore_errors=True)


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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to the newest revision once a session, for `sqlite_url` to
    copy: a copy takes a millisecond, migrating every revision a tenth of a second or more,
    on each of hundreds of tests."""
    path = tmp_path_factory.mktemp("sqlite-template") / "vigil.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        migrate(engine)
    finally:
        # The last connection closing folds the write-ahead log into the file itself.
        engine.dispose()
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A SQLite file for this test alone, its schema already migrated (what migrating it
    again finds: nothing to do). `empty_sqlite_url` for one without."""
    # A file, never sqlite:// : each thread would get its own empty in-memory database.
    path = tmp_path / "vigil.db"
    shutil.copyfile(sqlite_template, path)
    path.chmod(0o600)  # as the apps make theirs (shared/db.py)
    return f"sqlite:///{path}"


@pytest.fixture
def empty_sqlite_url(tmp_path: Path) -> str:
    """A SQLite file not yet made, for this test alone: for tests of the migrations."""
    return f"sqlite:///{tmp_path / 'vigil.db'}"


def stop_the_suite(request: pytest.FixtureRequest, reason: str) -> None:
    """Stop the whole run, saying why. In a worker, `pytest.exit` would end that worker alone
    (and the reason with it): the test fails with the reason and the run stops after it."""
    if not hasattr(request.config, "workerinput"):
        pytest.exit(reason, returncode=1)
    request.session.shouldstop = reason
    pytest.fail(reason, pytrace=False)


@pytest.fixture(scope="session")
def postgres_cluster(request: pytest.FixtureRequest) -> Iterator[PostgresCluster | None]:
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
        stop_the_suite(request, f"PostgreSQL could not be started: {exc}")
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


@pytest.fixture(scope="session")
def postgres_template(postgres_server: str) -> Iterator[str]:
    """The name of a database migrated to the newest revision once a session, for
    `postgres_url` to copy: a copy takes a few milliseconds, migrating every revision on an
    empty database a good part of a second, on each of hundreds of tests."""
    with fresh_database(postgres_server, prefix="vigil_template") as url:
        engine = make_engine(url)
        try:
            migrate(engine)
        finally:
            # A database is copied only while nobody is connected to it.
            engine.dispose()
        yield make_url(url).database


@pytest.fixture
def postgres_url(postgres_server: str, postgres_template: str) -> Iterator[str]:
    """A new PostgreSQL database for this test alone, its schema already migrated (what
    migrating it again finds: nothing to do). `empty_postgres_url` for one without."""
    with fresh_database(postgres_server, template=postgres_template) as url:
        yield url


@pytest.fixture
def empty_postgres_url(postgres_server: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for this test alone: for tests of the migrations."""
    with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL (already migrated)."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database_url(request: pytest.FixtureRequest) -> str:
    """`database_url`, but with nothing in it on either backend: for tests of migrations."""
    return request.getfixturevalue(f"empty_{request.param}_url")


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
