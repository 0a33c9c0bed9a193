"""confluent-kafka helpers shared by the producer and the consumer."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from shared.config import ConfigError

log = logging.getLogger(__name__)


def admin_client(bootstrap_servers: str) -> AdminClient:
    # librdkafka logs through Python logging instead of raw lines on stderr.
    return AdminClient(
        {"bootstrap.servers": bootstrap_servers, "socket.timeout.ms": 5000, "logger": log}
    )


def broker_reachable(bootstrap_servers: str, timeout: float = 2.0) -> bool:
    """True when the broker answers a metadata request within `timeout` seconds."""
    try:
        admin_client(bootstrap_servers).list_topics(timeout=timeout)
    except KafkaException:
        return False
    return True


def wait_for_broker(bootstrap_servers: str, deadline_s: float = 30.0) -> None:
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
    bootstrap_servers: str,
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


def producer_config(
    bootstrap_servers: str, compression: str = "lz4", **overrides: Any
) -> dict[str, Any]:
    """Idempotent, acknowledged delivery: a retried send never duplicates a sample."""
    config = {
        "bootstrap.servers": bootstrap_servers,
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
