"""The Redis of `make run` and the tests: Debian's redis-server (`make redis` installs it).

Only Vigil's users get in: the server reads the ACL file that `python -m
devserver.redis_credentials var/redis` makes (shared/redis_acl.py says who may do what), keeps
protected mode on and listens on loopback only. `start_redis(..., tls=...)` serves TLS alone,
for the tests of Vigil's rediss:// clients; `make run` stays plain on loopback. It keeps
nothing on disk: queued analyses lost with it are re-queued by the worker's sweeper.
`maxmemory` bounds it, and volatile-lru evicts only keys with a TTL (cached reads, rate-limit
windows), never the queue or the revocations.
Run `python -m devserver.redis_server` to serve on the port of REDIS_URL.
"""

from __future__ import annotations

import logging
import re
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from devserver.ports import LOOPBACK_HOSTS
from devserver.tls import ServerCertificate
from shared.config import VAR_DIR, Setting, parse_path

log = logging.getLogger(__name__)

REDIS_SERVER = Path("/usr/bin/redis-server")
REDIS_DIR = VAR_DIR / "redis"
DEFAULT_MAXMEMORY = "256mb"


def parse_memory(raw: str) -> str:
    """A Redis memory size such as '256mb' or '1gb'."""
    value = raw.strip().lower()
    if not re.fullmatch(r"[1-9][0-9]*(b|kb|mb|gb)?", value):
        raise ValueError(f"expected a size like '256mb', got {raw!r}")
    return value


REDIS_SERVER_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "REDIS_ACL_FILE",
        parse_path,
        REDIS_DIR / "users.acl",
        "The embedded Redis's users (python -m devserver.redis_credentials var/redis).",
    ),
    Setting("REDIS_MAXMEMORY", parse_memory, DEFAULT_MAXMEMORY),
)


def tls_options(port: int, certificate: ServerCertificate) -> list[str]:
    """TLS only on `port`: no plain port at all, and no client certificates asked for (the
    ACL's passwords say who a client is; the certificate, who the server is)."""
    return [
        *("--port", "0", "--tls-port", str(port)),
        *("--tls-cert-file", str(certificate.cert_file)),
        *("--tls-key-file", str(certificate.key_file)),
        # Required by redis-server even when it verifies no client.
        *("--tls-ca-cert-file", str(certificate.ca_file)),
        *("--tls-auth-clients", "no"),
    ]


def redis_command(
    port: int,
    acl_file: Path,
    maxmemory: str = DEFAULT_MAXMEMORY,
    host: str = "127.0.0.1",
    tls: ServerCertificate | None = None,
) -> list[str]:
    if not REDIS_SERVER.exists():
        raise FileNotFoundError(f"{REDIS_SERVER} is missing: `make redis` installs redis-server")
    listen = ["--port", str(port)] if tls is None else tls_options(port, tls)
    return [
        str(REDIS_SERVER),
        *listen,
        "--bind",
        host,
        "--protected-mode",
        "yes",
        "--aclfile",
        str(acl_file),
        "--maxmemory",
        maxmemory,
        "--maxmemory-policy",
        "volatile-lru",
        "--save",
        "",
        "--appendonly",
        "no",
        # No working files: `dir` would otherwise be wherever the process started.
        "--dir",
        "/tmp",  # noqa: S108
        "--loglevel",
        "warning",
    ]


def start_redis(
    port: int,
    acl_file: Path,
    log_file: Path | None = None,
    maxmemory: str = DEFAULT_MAXMEMORY,
    tls: ServerCertificate | None = None,
) -> subprocess.Popen:
    """Start redis-server in the background on 127.0.0.1:`port`, with the users of
    `acl_file`; over TLS only, with `tls`'s certificate, if given."""
    out = log_file.open("ab") if log_file is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(  # noqa: S603
            redis_command(port, acl_file, maxmemory, tls=tls),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if log_file is not None:
            out.close()


def wait_for_redis(redis_url: str, deadline_s: float = 20.0) -> None:
    """Block until Redis answers a PING from the user of `redis_url`, or raise TimeoutError
    (or redis.AuthenticationError: waiting would not mend wrong credentials)."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=0.5)
    give_up = time.monotonic() + deadline_s
    try:
        while True:
            try:
                client.ping()
                return
            except redis.AuthenticationError:
                raise
            except redis.ConnectionError:
                if time.monotonic() > give_up:
                    raise TimeoutError(
                        f"Redis on port {urlsplit(redis_url).port} did not answer in {deadline_s}s"
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
        load_settings,
        parse_bool,
    )
    from shared.logging import configure_logging

    settings = load_settings(
        (
            *COMMON_SETTINGS,
            *REDIS_SETTINGS,
            *REDIS_SERVER_SETTINGS,
            Setting("EMBEDDED_REDIS", parse_bool, True),
        )
    )
    configure_logging("redis", settings["LOG_LEVEL"])
    port = embedded_port(settings["REDIS_URL"])
    embedded = settings["EMBEDDED_REDIS"] and port is not None
    command = None
    if embedded:
        acl_file = settings["REDIS_ACL_FILE"]
        # Made before honcho starts (the Makefile), so the apps never race Redis for it.
        if not acl_file.exists():
            raise SystemExit(
                f"{acl_file} is missing: run `python -m devserver.redis_credentials "
                f"{acl_file.parent}` first (`make run` does)"
            )
        command = redis_command(port, acl_file, settings["REDIS_MAXMEMORY"])
    exec_embedded_or_idle("Redis (memory only)", command)


if __name__ == "__main__":
    main()
