"""Redis is not a way in: nothing without a password, and each app's user only what it needs
(shared/redis_acl.py), on the session's Redis started as `make run` starts it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery
from celery.contrib.testing.worker import start_worker
from dotenv import dotenv_values

from devserver.redis_credentials import RedisAccess, write_credentials
from shared.analysis_queue import ANALYSE_TASK, celery_config, queue_name
from shared.config import RedisRole, redis_url_setting
from shared.redis_acl import ADMIN

pytestmark = pytest.mark.integration


@pytest.fixture
def connect(redis_settings: dict[str, str]) -> Iterator[Callable[[RedisRole], redis.Redis]]:
    """`connect(role)`: a client with the user of `role`, closed after the test."""
    clients: list[redis.Redis] = []

    def make(role: RedisRole) -> redis.Redis:
        clients.append(redis.Redis.from_url(redis_settings[redis_url_setting(role)]))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def keys(redis_settings: dict[str, str]) -> dict[str, str]:
    """Names of the keys and channels each app uses, in this test's namespace."""
    ns = redis_settings["REDIS_NAMESPACE"]
    return {
        "cache": f"{ns}:cache:patients:0:abc",
        "generation": f"{ns}:generation:patients",
        "revoked": f"{ns}:auth:revoked-tokens",
        # kombu puts its global key prefix before every key and channel, the queue's too.
        "queue": f"{ns}:celery:{queue_name(ns)}",
        "pidbox": f"{ns}:celery:/0.celery.pidbox",
        "events": f"{ns}:events",
    }


def test_without_credentials_redis_refuses_everything(redis_users: RedisAccess) -> None:
    anonymous = redis.Redis.from_url(redis_users.url)
    wrong = redis.Redis.from_url(redis_users.url, username=ADMIN, password="not-it")  # noqa: S106
    try:
        with pytest.raises(redis.AuthenticationError, match="Authentication required"):
            anonymous.set("test-x:cache:planted", b"payload")
        with pytest.raises(redis.AuthenticationError, match="invalid username-password"):
            wrong.set("test-x:cache:planted", b"payload")
    finally:
        anonymous.close()
        wrong.close()


def denied(call: Callable[[], object]) -> bool:
    try:
        call()
    except redis.exceptions.NoPermissionError:
        return True
    return False


def test_the_cache_user_can_only_cache(connect, keys: dict[str, str]) -> None:
    cache = connect(RedisRole.CACHE)
    cache.set(keys["cache"], "{}", ex=5)
    assert cache.get(keys["cache"]) == b"{}"
    script = cache.script_load("return redis.call('LPUSH', KEYS[1], ARGV[1])")
    refused = {
        "publish a live event": lambda: cache.publish(keys["events"], '{"type": "vitals"}'),
        "command the workers": lambda: cache.publish(keys["pidbox"], "shutdown"),
        "read the queue": lambda: cache.lrange(keys["queue"], 0, -1),
        "queue a task from a script": lambda: cache.evalsha(script, 1, keys["queue"], "x"),
        "un-revoke a token": lambda: cache.delete(keys["revoked"]),
        "bump a generation": lambda: cache.incr(keys["generation"]),
        "reconfigure Redis": lambda: cache.config_set("maxmemory", "0"),
        "flush everything": lambda: cache.flushall(),
        "run any script": lambda: cache.eval("return 1", 0),
        "list the keys": lambda: cache.keys("*"),
        "write outside its prefix": lambda: cache.set("x", "1", ex=5),
    }
    assert {what for what, call in refused.items() if not denied(call)} == set()


def test_the_events_user_cannot_read_the_cache_or_the_queue(connect, keys: dict[str, str]) -> None:
    events = connect(RedisRole.EVENTS)
    assert events.publish(keys["events"], '{"type": "vitals"}') == 0
    assert events.incr(keys["generation"]) == 1
    refused = {
        "read a cached answer": lambda: events.get(keys["cache"]),
        "read the queue": lambda: events.llen(keys["queue"]),
        "command the workers": lambda: events.publish(keys["pidbox"], "shutdown"),
        "reconfigure Redis": lambda: events.config_get("*"),
    }
    assert {what for what, call in refused.items() if not denied(call)} == set()
    pubsub = events.pubsub()
    try:
        with pytest.raises(redis.exceptions.NoPermissionError):
            pubsub.subscribe(keys["pidbox"])
            pubsub.get_message(timeout=1)
    finally:
        pubsub.close()


def test_the_queue_user_cannot_command_workers_or_read_the_cache(
    connect, keys: dict[str, str], redis_settings: dict[str, str]
) -> None:
    queue = connect(RedisRole.QUEUE)
    assert queue.llen(keys["queue"]) == 0
    # A worker's heartbeat, which nothing reads, is the one thing it may publish.
    ns = redis_settings["REDIS_NAMESPACE"]
    assert queue.publish(f"{ns}:celery:/0.celeryev/worker.heartbeat", "{}") == 0
    refused = {
        "command the workers": lambda: queue.publish(keys["pidbox"], "shutdown"),
        "publish a live event": lambda: queue.publish(keys["events"], "{}"),
        "read a cached answer": lambda: queue.get(keys["cache"]),
        "flush everything": lambda: queue.flushdb(),
    }
    assert {what for what, call in refused.items() if not denied(call)} == set()


def test_memory_is_bounded_and_only_expiring_keys_are_evicted(redis_admin: redis.Redis) -> None:
    config = redis_admin.config_get("*")
    assert int(config["maxmemory"]) == 256 * 1024 * 1024
    assert config["maxmemory-policy"] == "volatile-lru"
    assert (config["protected-mode"], config["bind"]) == ("yes", "127.0.0.1")


class CreatesFile:
    """Unpickling this runs `touch <path>`."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.path}",))


def test_a_pickled_celery_message_is_refused(
    redis_settings: dict[str, str], redis_admin: redis.Redis, tmp_path: Path, wait_for
) -> None:
    namespace = redis_settings["REDIS_NAMESPACE"]
    celery = Celery("vigil-test", set_as_current=False)
    celery.conf.update(celery_config(redis_settings["REDIS_QUEUE_URL"], namespace))
    ran: list[object] = []
    # worker_app's tasks are shared tasks: imported by another test in this process, they
    # would join this app too. This one stands in for them here.
    if ANALYSE_TASK in celery.tasks:
        celery.tasks.unregister(ANALYSE_TASK)

    @celery.task(name=ANALYSE_TASK)
    def analyse(notification_id: object) -> None:
        ran.append(notification_id)

    unpickled = tmp_path / "pwned"
    # Whoever holds the queue's password chooses the serializer of what they send.
    celery.send_task(ANALYSE_TASK, args=[CreatesFile(unpickled)], serializer="pickle")
    queue = f"{namespace}:celery:{queue_name(namespace)}"
    assert redis_admin.llen(queue) == 1

    with start_worker(celery, pool="solo", perform_ping_check=False, loglevel="ERROR"):
        wait_for(lambda: redis_admin.llen(queue) == 0, timeout=20, message="the message taken")
        # Taken, refused and acknowledged: nothing left to redeliver.
        wait_for(
            lambda: not redis_admin.hlen(f"{namespace}:celery:unacked"),
            timeout=20,
            message="the message dropped",
        )
    assert not unpickled.exists()
    assert ran == []


def test_make_run_s_credentials_are_made_once_and_private(tmp_path: Path) -> None:
    folder = tmp_path / "redis"
    url = "redis://127.0.0.1:16379/0"
    first = write_credentials(folder, url, "vigil")
    second = write_credentials(folder, url, "vigil")
    assert first == second  # kept from one run to the next
    assert {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()} == {
        "users.acl": 0o600,
        "clients.env": 0o600,
        "admin.env": 0o600,
    }
    assert folder.stat().st_mode & 0o777 == 0o700
    acl = (folder / "users.acl").read_text()
    assert all(password not in acl for password in first.passwords.values())
    # The apps read their URLs from clients.env (honcho's environment), one user per role.
    clients = dotenv_values(folder / "clients.env")
    assert clients == first.settings(url)
    assert {redis.connection.parse_url(u)["username"] for u in clients.values()} == {
        "vigil-cache",
        "vigil-queue",
        "vigil-events",
    }
