"""Redis over TLS: Vigil's clients, built from its settings, verify the server's certificate.

One TLS-only redis-server (devserver.redis_server) for the module, its certificate from a
throwaway CA (devserver.tls).
"""

from __future__ import annotations

import logging
import queue
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from devserver.ports import free_port
from devserver.redis_credentials import RedisAccess
from devserver.redis_server import start_redis, wait_for_redis
from devserver.tls import ServerCertificate, make_server_certificate
from monitor_app.config import MONITOR_SETTINGS, extension_config
from monitor_app.json_cache import JsonCache
from monitor_app.live.hub import EventHub
from shared.analysis_queue import AnalysisQueue, queue_name
from shared.app import check_redis_transport
from shared.config import (
    REDIS_SETTINGS,
    ConfigError,
    RedisRole,
    load_settings,
    plaintext_redis_hosts,
    redis_url,
    redis_url_setting,
)
from shared.events import PATIENTS, Events
from shared.redis_acl import user_name


@dataclass(frozen=True, slots=True)
class TlsRedis:
    access: RedisAccess
    certificate: ServerCertificate
    port: int

    def settings(self, namespace: str) -> dict[str, Any]:
        """Vigil's Redis settings, parsed as an app parses them."""
        environ = {
            **self.access.settings(),
            "REDIS_NAMESPACE": namespace,
            "REDIS_TLS_CA_FILE": str(self.certificate.ca_file),
        }
        return load_settings(REDIS_SETTINGS, environ)


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    folder = tmp_path_factory.mktemp("redis-tls")
    certificate = make_server_certificate(folder / "tls")
    port = free_port()
    access = RedisAccess.create(folder / "users", port, tls=True)
    process = start_redis(port, access.acl_file, folder / "redis.log", tls=certificate)
    try:
        wait_for_redis(f"{access.admin_url}?ssl_ca_certs={certificate.ca_file}")
        yield TlsRedis(access, certificate, port)
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def settings(tls_redis: TlsRedis) -> dict[str, Any]:
    return tls_redis.settings(f"tls-{uuid.uuid4().hex[:10]}")


def test_the_cache_reads_and_writes_over_tls(settings: dict[str, Any]) -> None:
    url = redis_url(settings, RedisRole.CACHE)
    cache = JsonCache(url, f"{settings['REDIS_NAMESPACE']}:cache:", 60)
    cache.set("patients", {"items": [1, 2]})
    assert cache.get("patients") == {"items": [1, 2]}
    cache.redis.close()


def test_rate_limits_count_over_tls(settings: dict[str, Any]) -> None:
    defaults = {setting.name: setting.default for setting in MONITOR_SETTINGS}
    config = extension_config(
        {**defaults, **settings, "RATE_LIMIT_ENABLED": True, "RATE_LIMIT": "5/minute"}
    )
    storage = storage_from_string(
        config["RATELIMIT_STORAGE_URI"], **config["RATELIMIT_STORAGE_OPTIONS"]
    )
    limiter = FixedWindowRateLimiter(storage)
    assert limiter.hit(parse("2/minute"), "tls")
    assert limiter.hit(parse("2/minute"), "tls")
    assert not limiter.hit(parse("2/minute"), "tls")


def test_events_publish_over_tls(settings: dict[str, Any], wait_for: Callable[..., Any]) -> None:
    events = Events(redis_url(settings, RedisRole.EVENTS), settings["REDIS_NAMESPACE"])
    pubsub = events.redis.pubsub()
    pubsub.subscribe(events.channel)
    try:
        assert wait_for(lambda: pubsub.get_message(timeout=1.0))["type"] == "subscribe"
        assert events.publish("vitals", {"patient_id": "p1"}, invalidates=[PATIENTS])
        message = wait_for(lambda: pubsub.get_message(timeout=1.0))
        assert b'"patient_id": "p1"' in message["data"]
        assert events.generation(PATIENTS) == 1
    finally:
        pubsub.close()
        events.redis.close()


def test_the_live_hub_relays_events_over_tls(
    settings: dict[str, Any], wait_for: Callable[..., Any]
) -> None:
    url = redis_url(settings, RedisRole.EVENTS)
    events = Events(url, settings["REDIS_NAMESPACE"])
    hub = EventHub(url, events.channel, max_clients=1)
    hub.start()
    try:
        wait_for(lambda: hub.connected, message="the hub to subscribe")
        subscription = hub.subscribe()

        def relayed() -> str | None:
            # Again until it arrives: `connected` is set once SUBSCRIBE is sent, not answered.
            assert events.publish("vitals", {"patient_id": "p2"})
            try:
                return subscription.messages.get(timeout=0.2)
            except queue.Empty:
                return None

        assert '"patient_id": "p2"' in wait_for(relayed)
    finally:
        hub.stop()
        events.redis.close()


def test_an_analysis_is_enqueued_over_tls(settings: dict[str, Any], tls_redis: TlsRedis) -> None:
    namespace = settings["REDIS_NAMESPACE"]
    analyses = AnalysisQueue(redis_url(settings, RedisRole.QUEUE), namespace)
    try:
        assert analyses.enqueue([uuid.uuid4()]) == 1
    finally:
        analyses.celery.close()
    admin = redis.Redis.from_url(
        tls_redis.access.admin_url, ssl_ca_certs=str(tls_redis.certificate.ca_file)
    )
    try:
        assert admin.llen(f"{namespace}:celery:{queue_name(namespace)}") == 1
    finally:
        admin.close()


def test_a_client_that_does_not_trust_the_ca_is_refused(
    tls_redis: TlsRedis, tmp_path: Path
) -> None:
    stranger = make_server_certificate(tmp_path / "other", ca_name="Another CA")
    url = tls_redis.access.users.url(user_name(RedisRole.CACHE), tls_redis.access.url)
    client = redis.Redis.from_url(url, ssl_ca_certs=str(stranger.ca_file), socket_connect_timeout=2)
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        client.ping()
    client.close()


def test_the_queue_does_not_enqueue_to_a_server_it_does_not_trust(
    tls_redis: TlsRedis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Kombu, left to itself, would take rediss:// without checking the certificate.
    stranger = make_server_certificate(tmp_path / "other", ca_name="Another CA")
    settings = {**tls_redis.settings("tls-stranger"), "REDIS_TLS_CA_FILE": stranger.ca_file}
    analyses = AnalysisQueue(redis_url(settings, RedisRole.QUEUE), "tls-stranger")
    try:
        with caplog.at_level(logging.WARNING, logger="shared.analysis_queue"):
            assert analyses.enqueue([uuid.uuid4()]) == 0
    finally:
        analyses.celery.close()
    assert "certificate verify failed" in caplog.records[0].error


def test_a_plain_client_gets_nothing_from_the_tls_port(tls_redis: TlsRedis) -> None:
    url = tls_redis.access.users.url(user_name(RedisRole.CACHE), tls_redis.access.url)
    plain = redis.Redis.from_url(
        url.replace("rediss://", "redis://", 1), socket_connect_timeout=2, socket_timeout=2
    )
    with pytest.raises(redis.ConnectionError):
        plain.ping()
    plain.close()


def test_a_ca_file_that_does_not_exist_names_the_variable(tmp_path: Path) -> None:
    environ = {"REDIS_URL": "rediss://127.0.0.1:6380/0", "REDIS_TLS_CA_FILE": str(tmp_path / "x")}
    with pytest.raises(ConfigError, match="^REDIS_TLS_CA_FILE: no such file"):
        load_settings(REDIS_SETTINGS, environ)


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("REDIS_URL", "rediss://127.0.0.1:6380/0?ssl_cert_reqs=none"),
        (redis_url_setting(RedisRole.QUEUE), "rediss://h:6380/0?ssl_cert_reqs=optional"),
        ("REDIS_URL", "http://127.0.0.1:6379/0"),
    ],
)
def test_urls_that_would_not_check_the_server_are_refused(variable: str, url: str) -> None:
    with pytest.raises(ConfigError, match=f"^{variable}: "):
        load_settings(REDIS_SETTINGS, {variable: url})


def test_plain_redis_off_this_machine_is_warned_of_at_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = {
        "REDIS_URL": "redis://127.0.0.1:16379/0",
        redis_url_setting(RedisRole.CACHE): "redis://u:secret@cache.ward.example:6379/0",
        redis_url_setting(RedisRole.QUEUE): "rediss://queue.ward.example:6380/0",
    }
    assert plaintext_redis_hosts(config) == ["cache.ward.example"]
    with caplog.at_level(logging.WARNING, logger="shared.app"):
        check_redis_transport(config)
    assert [r.redis_host for r in caplog.records] == ["cache.ward.example"]
    assert "secret" not in caplog.text


def test_a_ca_file_without_a_rediss_url_is_refused(tls_redis: TlsRedis) -> None:
    config = {"REDIS_URL": "redis://127.0.0.1:16379/0", "REDIS_TLS_CA_FILE": Path("/ca.pem")}
    with pytest.raises(ConfigError, match="^REDIS_TLS_CA_FILE: "):
        check_redis_transport(config)
    check_redis_transport({**config, **tls_redis.settings("tls-ok")})
