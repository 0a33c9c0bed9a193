"""docker-compose.yml's Redis, run here as compose runs it: the `redis-users` service's command
with its environment writes the ACL file, then Debian's redis-server runs the `redis` service's
command on it (on a loopback port instead of the stack's network). Every app's URLs from the
compose file sign in as their role's user; nothing gets in without one, and no role's user
can do another's work."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from devserver.ports import free_port
from devserver.processes import wait_until
from devserver.redis_server import REDIS_SERVER
from shared.config import RedisRole, redis_url_setting
from tests.compose import ROOT, compose_config

pytestmark = pytest.mark.integration

# The folder the `redis-users` volume is mounted at, in both containers.
USERS_DIR = "/run/vigil/redis"


@dataclass
class ComposeRedis:
    compose: dict
    port: int
    users_dir: Path
    process: subprocess.Popen

    def url(self, url: str) -> str:
        """`url`, a compose service's, pointing at this server."""
        return url.replace("@redis:6379", f"@127.0.0.1:{self.port}").replace(
            "//redis:6379", f"//127.0.0.1:{self.port}"
        )

    def healthcheck(self, **environment: str) -> subprocess.CompletedProcess:
        """The `redis` service's healthcheck, with its environment (and `environment`)."""
        service = self.compose["services"]["redis"]
        kind, command = service["healthcheck"]["test"]
        assert kind == "CMD-SHELL"
        # `config` prints compose's escape for a literal $ as it is; the engine runs one $.
        command = command.replace("$$", "$").replace("redis-cli", f"redis-cli -p {self.port}")
        environment = {"PATH": os.environ["PATH"], **service["environment"], **environment}
        return subprocess.run(  # noqa: S603
            ["sh", "-c", command], env=environment, capture_output=True, timeout=10, check=False
        )


def make_users(compose: dict, users_dir: Path) -> subprocess.CompletedProcess:
    """The `redis-users` service's command, writing into `users_dir` for its volume."""
    service = compose["services"]["redis-users"]
    command = [part.replace(USERS_DIR, str(users_dir)) for part in service["command"]]
    assert command[0] == "python"
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("REDIS_", "VIGIL_"))
    }
    return subprocess.run(  # noqa: S603
        [sys.executable, *command[1:]],
        cwd=ROOT,
        env=environment | service["environment"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def compose_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeRedis]:
    compose = compose_config()
    root = tmp_path_factory.mktemp("compose-redis")
    users_dir = root / "redis-users"
    users_dir.mkdir()
    made = make_users(compose, users_dir)
    assert made.returncode == 0, made.stderr
    command = [
        part.replace(USERS_DIR, str(users_dir)) for part in compose["services"]["redis"]["command"]
    ]
    assert command[0] == "redis-server"
    port = free_port()
    with (root / "redis.log").open("ab") as log:
        process = subprocess.Popen(  # noqa: S603
            [str(REDIS_SERVER), *command[1:], "--port", str(port), "--bind", "127.0.0.1"]
            + ["--dir", str(root)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ComposeRedis(compose, port, users_dir, process)
    try:
        wait_until(
            lambda: process.poll() is None and server.healthcheck().returncode == 0,
            20,
            message="compose's Redis to pass its healthcheck",
        )
        yield server
    finally:
        process.terminate()
        process.wait(10)


def test_the_acl_file_holds_digests_only(compose_redis: ComposeRedis):
    text = (compose_redis.users_dir / "users.acl").read_text()
    for value in compose_redis.compose["services"]["redis-users"]["environment"].values():
        assert value not in text
    assert "user default reset off" in text


def role_urls() -> list[tuple[str, RedisRole]]:
    services = compose_config()["services"]
    return [
        (name, role)
        for name, service in sorted(services.items())
        for role in RedisRole
        if redis_url_setting(role) in service.get("environment", {})
    ]


@pytest.mark.parametrize(("name", "role"), role_urls())
def test_each_app_signs_in_with_the_url_of_each_of_its_roles(
    compose_redis: ComposeRedis, name: str, role: RedisRole
):
    url = compose_redis.compose["services"][name]["environment"][redis_url_setting(role)]
    assert urlsplit(url).username == f"vigil-{role}"
    client = redis.Redis.from_url(compose_redis.url(url))
    try:
        # Signed in, as that user with that password (the users may not ask who they are).
        assert client.ping() is True
    finally:
        client.close()


def test_without_a_user_redis_answers_nothing(compose_redis: ComposeRedis):
    fallback = compose_redis.compose["services"]["monitor"]["environment"]["REDIS_URL"]
    client = redis.Redis.from_url(compose_redis.url(fallback))
    try:
        with pytest.raises(redis.AuthenticationError):
            client.get("vigil:cache:anything")
    finally:
        client.close()


@pytest.mark.parametrize(
    ("role", "attack"),
    [
        (RedisRole.CACHE, lambda c: c.publish("vigil:events", "forged alert")),
        (RedisRole.CACHE, lambda c: c.srem("vigil:auth:revoked", "a-token")),
        (RedisRole.EVENTS, lambda c: c.lpush("vigil:celery:celery", "job")),
        (RedisRole.QUEUE, lambda c: c.publish("vigil:events", "forged alert")),
        (RedisRole.QUEUE, lambda c: c.config_get("*")),
    ],
    ids=[
        "cache publishes an event",
        "cache un-revokes a token",
        "events enqueues a job",
        "queue publishes an event",
        "queue reads the config",
    ],
)
def test_a_roles_password_does_no_other_roles_work(compose_redis, role, attack):
    url = compose_redis.compose["services"]["monitor"]["environment"][redis_url_setting(role)]
    client = redis.Redis.from_url(compose_redis.url(url))
    try:
        with pytest.raises(redis.exceptions.NoPermissionError):
            attack(client)
    finally:
        client.close()


def test_the_healthcheck_fails_without_the_admins_password(compose_redis: ComposeRedis):
    assert compose_redis.healthcheck(REDIS_ADMIN_PASSWORD="guessed0000000000").returncode != 0


@pytest.mark.parametrize(
    "password",
    ["", "short1", "pass word with spaces 0123", "x@evil.example:6379/0#0123456789"],
    ids=["empty", "short", "spaces", "url-breaking"],
)
def test_a_password_that_would_not_survive_a_url_writes_no_users(tmp_path: Path, password: str):
    compose = compose_config()
    service = compose["services"]["redis-users"]
    service["environment"] = {**service["environment"], "REDIS_CACHE_PASSWORD": password}

    made = make_users(compose, tmp_path)

    assert made.returncode == 2
    assert "REDIS_CACHE_PASSWORD" in made.stderr
    assert list(tmp_path.iterdir()) == []
