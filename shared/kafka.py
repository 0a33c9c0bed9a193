"""confluent-kafka helpers shared by the producer and the consumer, and the one place where
Vigil's Kafka clients get their address and credentials (`KafkaConnection`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from shared.config import ConfigError

log = logging.getLogger(__name__)


class SecurityProtocol(StrEnum):
    """How a client talks to the broker: librdkafka's `security.protocol`."""

    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"

    @property
    def sasl(self) -> bool:
        return self in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL)

    @property
    def tls(self) -> bool:
        return self in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL)


class SaslMechanism(StrEnum):
    SCRAM_SHA_512 = "SCRAM-SHA-512"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    PLAIN = "PLAIN"


@dataclass(frozen=True, slots=True)
class KafkaConnection:
    """Where a Vigil client connects and how it proves who it is (README: "Securing Kafka").

    Its text is the bootstrap servers alone: a connection that ends up in a log line never
    shows its password.
    """

    bootstrap_servers: str
    protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    sasl_mechanism: SaslMechanism = SaslMechanism.SCRAM_SHA_512
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl_ca_file: Path | None = None
    ssl_cert_file: Path | None = None
    ssl_key_file: Path | None = None

    def __post_init__(self) -> None:
        # Plain strings are welcome (tests, tools); the checks below need the enums.
        object.__setattr__(self, "protocol", SecurityProtocol(self.protocol))
        object.__setattr__(self, "sasl_mechanism", SaslMechanism(self.sasl_mechanism))
        if self.protocol.sasl:
            if not self.username:
                raise ConfigError(f"KAFKA_SASL_USERNAME: required with {self.protocol}")
            if not self.password:
                raise ConfigError(
                    f"KAFKA_SASL_PASSWORD: required with {self.protocol} "
                    "(or KAFKA_SASL_PASSWORD_FILE)"
                )
            if self.sasl_mechanism is SaslMechanism.PLAIN and not self.protocol.tls:
                # PLAIN sends the password itself: only inside TLS. SCRAM never sends it.
                raise ConfigError(
                    "KAFKA_SASL_MECHANISM: PLAIN needs KAFKA_SECURITY_PROTOCOL=SASL_SSL"
                )
        if (self.ssl_cert_file is None) != (self.ssl_key_file is None):
            raise ConfigError("KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE: set both or neither")
        for name, path in (
            ("KAFKA_SSL_CA_FILE", self.ssl_ca_file),
            ("KAFKA_SSL_CERT_FILE", self.ssl_cert_file),
            ("KAFKA_SSL_KEY_FILE", self.ssl_key_file),
        ):
            if path is None:
                continue
            if not self.protocol.tls:
                raise ConfigError(f"{name}: only used with SSL or SASL_SSL, not {self.protocol}")
            if not path.is_file():
                raise ConfigError(f"{name}: no such file {str(path)!r}")

    def __str__(self) -> str:
        return self.bootstrap_servers

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> KafkaConnection:
        """The connection an app's settings (COMMON_SETTINGS) describe; ConfigError if they
        do not make a working one."""
        password = config["KAFKA_SASL_PASSWORD"]
        password_file: Path | None = config["KAFKA_SASL_PASSWORD_FILE"]
        if password_file is not None:
            if password is not None:
                raise ConfigError(
                    "KAFKA_SASL_PASSWORD_FILE: set it or KAFKA_SASL_PASSWORD, not both"
                )
            try:
                # A secret mounted as a file usually ends with a newline that is not part of it.
                password = password_file.read_text().rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(f"KAFKA_SASL_PASSWORD_FILE: cannot read it: {exc}") from None
        return cls(
            config["KAFKA_BOOTSTRAP_SERVERS"],
            SecurityProtocol(config["KAFKA_SECURITY_PROTOCOL"]),
            SaslMechanism(config["KAFKA_SASL_MECHANISM"]),
            config["KAFKA_SASL_USERNAME"],
            password,
            config["KAFKA_SSL_CA_FILE"],
            config["KAFKA_SSL_CERT_FILE"],
            config["KAFKA_SSL_KEY_FILE"],
        )

    def client_config(self) -> dict[str, Any]:
        """librdkafka settings for any client (producer, consumer, admin) of this connection."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": str(self.protocol),
        }
        if self.protocol.sasl:
            config |= {
                "sasl.mechanism": str(self.sasl_mechanism),
                "sasl.username": self.username,
                "sasl.password": self.password,
            }
        if self.protocol.tls:
            # The broker's name is always checked against its certificate (librdkafka's
            # default, kept explicit): TLS without it would take any server's word.
            config["ssl.endpoint.identification.algorithm"] = "https"
            if self.ssl_ca_file is not None:
                config["ssl.ca.location"] = str(self.ssl_ca_file)
            if self.ssl_cert_file is not None:
                config["ssl.certificate.location"] = str(self.ssl_cert_file)
                config["ssl.key.location"] = str(self.ssl_key_file)
        return config


# A bare address is a PLAINTEXT connection: the embedded broker's, and the tests'.
Connectable = str | KafkaConnection


def connection(target: Connectable) -> KafkaConnection:
    return target if isinstance(target, KafkaConnection) else KafkaConnection(target)


def client_config(target: Connectable, **overrides: Any) -> dict[str, Any]:
    """Settings for a Consumer (or any client) of `target`, with `overrides` after them."""
    return connection(target).client_config() | overrides


def admin_client(bootstrap_servers: Connectable) -> AdminClient:
    # librdkafka logs through Python logging instead of raw lines on stderr.
    return AdminClient(
        client_config(bootstrap_servers, **{"socket.timeout.ms": 5000, "logger": log})
    )


def broker_reachable(bootstrap_servers: Connectable, timeout: float = 2.0) -> bool:
    """True when the broker answers a metadata request within `timeout` seconds."""
    try:
        admin_client(bootstrap_servers).list_topics(timeout=timeout)
    except KafkaException:
        return False
    return True


def wait_for_broker(bootstrap_servers: Connectable, deadline_s: float = 30.0) -> None:
    """Block until the broker answers, or raise TimeoutError."""
    give_up = time.monotonic() + deadline_s
    while not broker_reachable(bootstrap_servers, timeout=1.0):
        if time.monotonic() > give_up:
            raise TimeoutError(f"Kafka at {bootstrap_servers} did not answer in {deadline_s}s")
        time.sleep(0.2)


@dataclass(frozen=True, slots=True)
class TopicSettings:
    """How Vigil creates a topic: the KAFKA_TOPIC_SETTINGS of an app's config."""

    partitions: int = 6
    replication_factor: int = 1
    min_insync_replicas: int = 1
    retention_hours: int = 168

    def __post_init__(self) -> None:
        if self.min_insync_replicas > self.replication_factor:
            raise ConfigError(
                f"KAFKA_MIN_INSYNC_REPLICAS: must not exceed KAFKA_REPLICATION_FACTOR "
                f"({self.replication_factor}), got {self.min_insync_replicas}"
            )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TopicSettings:
        return cls(
            partitions=config["KAFKA_TOPIC_PARTITIONS"],
            replication_factor=config["KAFKA_REPLICATION_FACTOR"],
            min_insync_replicas=config["KAFKA_MIN_INSYNC_REPLICAS"],
            retention_hours=config["KAFKA_RETENTION_HOURS"],
        )

    def with_partitions(self, partitions: int) -> TopicSettings:
        return replace(self, partitions=partitions)

    def new_topic(self, name: str) -> NewTopic:
        return NewTopic(
            name,
            num_partitions=self.partitions,
            replication_factor=self.replication_factor,
            config={
                # With acks=all, a write succeeds only once this many replicas have it: a
                # broker lost right after the acknowledgement loses no sample.
                "min.insync.replicas": str(self.min_insync_replicas),
                "retention.ms": str(self.retention_hours * 3600 * 1000),
                # Batches are stored as the producers compressed them, not recompressed.
                "compression.type": "producer",
            },
        )


def ensure_topic(
    bootstrap_servers: Connectable,
    topic: str,
    settings: TopicSettings = TopicSettings(),  # noqa: B008  (frozen, so never shared state)
    timeout: float = 10.0,
) -> bool:
    """Create `topic` with `settings` unless it exists. Returns True when it was created."""
    admin = admin_client(bootstrap_servers)
    metadata = admin.list_topics(timeout=timeout)
    if topic in metadata.topics and metadata.topics[topic].error is None:
        return False
    futures = admin.create_topics([settings.new_topic(topic)])
    try:
        futures[topic].result(timeout)
    except KafkaException as exc:
        if exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return False
        raise
    log.info(
        "created topic",
        extra={
            "topic": topic,
            "partitions": settings.partitions,
            "replication_factor": settings.replication_factor,
        },
    )
    return True


def ensure_vigil_topics(
    bootstrap_servers: Connectable,
    vitals_topic: str,
    dead_letter_topic: str,
    settings: TopicSettings,
) -> None:
    """Vigil's two topics, whichever app starts first: the vitals partitioned as `settings`
    say, the dead letters in one partition, so they are read back in the order they failed."""
    ensure_topic(bootstrap_servers, vitals_topic, settings)
    ensure_topic(bootstrap_servers, dead_letter_topic, settings.with_partitions(1))


def producer_config(
    bootstrap_servers: Connectable, compression: str = "lz4", **overrides: Any
) -> dict[str, Any]:
    """Idempotent, acknowledged delivery: a retried send never duplicates a sample."""
    config = {
        **connection(bootstrap_servers).client_config(),
        "enable.idempotence": True,
        # The Java clients' partitioner (librdkafka's own default hashes differently): every
        # producer, in any language, puts one patient's samples on one partition, so one
        # consumer sees them in order.
        "partitioner": "murmur2_random",
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 30000,
        "compression.type": compression,
    }
    config.update(overrides)
    return config
