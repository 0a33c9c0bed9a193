"""`python -m devserver.broker`: the embedded broker on the port of KAFKA_BOOTSTRAP_SERVERS.

With EMBEDDED_BROKER=false, or an address that is not a single loopback one, it stands idle and
Vigil uses the Kafka it is pointed at.
"""

from __future__ import annotations

from devserver.embedded import exec_embedded_or_idle
from devserver.ports import loopback_port
from devserver.tansu import broker_command
from shared.config import COMMON_SETTINGS, Setting, load_settings, parse_bool
from shared.logging import configure_logging


def main() -> None:
    settings = load_settings((*COMMON_SETTINGS, Setting("EMBEDDED_BROKER", parse_bool, True)))
    configure_logging("broker", settings["LOG_LEVEL"])
    port = loopback_port(settings["KAFKA_BOOTSTRAP_SERVERS"])
    embedded = settings["EMBEDDED_BROKER"] and port is not None
    exec_embedded_or_idle(
        "Kafka broker (tansu, memory only)", broker_command(port) if embedded else None
    )


if __name__ == "__main__":
    main()
