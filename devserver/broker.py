"""`python -m devserver.broker`: the embedded broker on the port of KAFKA_BOOTSTRAP_SERVERS.

KAFKA_ENGINE says which: tansu (memory only, the default) or apache (one Apache Kafka node,
its data kept in var/kafka/data). With EMBEDDED_BROKER=false, or an address that is not a
single loopback one, it stands idle and Vigil uses the Kafka it is pointed at.
"""

from __future__ import annotations

import sys
from enum import StrEnum

from devserver.embedded import exec_embedded_or_idle
from devserver.ports import loopback_port
from shared.config import COMMON_SETTINGS, ConfigError, Setting, load_settings, parse_bool
from shared.logging import configure_logging


class KafkaEngine(StrEnum):
    TANSU = "tansu"
    APACHE = "apache"


def parse_engine(raw: str) -> KafkaEngine:
    try:
        return KafkaEngine(raw.strip().lower())
    except ValueError:
        raise ValueError(f"expected tansu or apache, got {raw!r}") from None


BROKER_SETTINGS: tuple[Setting, ...] = (
    *COMMON_SETTINGS,
    Setting("EMBEDDED_BROKER", parse_bool, True),
    Setting("KAFKA_ENGINE", parse_engine, KafkaEngine.TANSU),
)


def broker(engine: KafkaEngine, port: int) -> tuple[str, list[str]]:
    """What runs, for the log, and its command."""
    if engine is KafkaEngine.APACHE:
        from devserver.apache_kafka import kafka_version, single_node_command

        what = f"Kafka broker (Apache Kafka {kafka_version()}, data in var/kafka/data)"
        return what, single_node_command(port)
    from devserver.tansu import broker_command

    return "Kafka broker (tansu, memory only)", broker_command(port)


def main() -> None:
    try:
        settings = load_settings(BROKER_SETTINGS)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging("broker", settings["LOG_LEVEL"])
    port = loopback_port(settings["KAFKA_BOOTSTRAP_SERVERS"])
    if not settings["EMBEDDED_BROKER"] or port is None:
        exec_embedded_or_idle("Kafka broker", None)
        return
    try:
        what, command = broker(settings["KAFKA_ENGINE"], port)
    except RuntimeError as exc:  # Apache Kafka's jars or Java are missing: the fix, in one line
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None
    exec_embedded_or_idle(what, command)


if __name__ == "__main__":
    main()
