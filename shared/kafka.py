"""confluent-kafka helpers shared by the producer and the consumer."""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

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


def ensure_topic(
    bootstrap_servers: str, topic: str, partitions: int = 6, timeout: float = 10.0
) -> bool:
    """Create `topic` unless it exists. Returns True when it was created."""
    admin = admin_client(bootstrap_servers)
    metadata = admin.list_topics(timeout=timeout)
    if topic in metadata.topics and metadata.topics[topic].error is None:
        return False
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
    )
    try:
        futures[topic].result(timeout)
    except KafkaException as exc:
        if exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return False
        raise
    log.info("created topic", extra={"topic": topic, "partitions": partitions})
    return True


def producer_config(bootstrap_servers: str, **overrides: Any) -> dict[str, Any]:
    """Idempotent, acknowledged delivery: a retried send never duplicates a sample."""
    config = {
        "bootstrap.servers": bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 30000,
    }
    config.update(overrides)
    return config
