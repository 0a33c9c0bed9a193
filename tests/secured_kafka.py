"""A secured Apache Kafka node seen from one test: its ward (topics, group, ACLs), each
identity's connection, and one produce's fate."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from confluent_kafka import KafkaError, Producer

from devserver.apache_kafka import KafkaCluster
from shared.kafka import KafkaConnection, SecurityProtocol
from shared.kafka import producer_config as vigil_producer_config
from tests.helpers import topic_size, vitals_message

# A refused delivery gives up after this long instead of the default 30 s.
REFUSED_TIMEOUT_MS = 3000
# Client errors after which no retry can succeed.
_DECISIVE = {KafkaError._AUTHENTICATION, KafkaError._SSL}


@dataclass(frozen=True, slots=True)
class Ward:
    """This test's topics and data_app group on the secured node, with Vigil's ACLs on them."""

    kafka: KafkaCluster
    vitals: str
    dead_letters: str
    group: str
    ca_file: Path

    def identity(self, user: str, tls: bool = False) -> KafkaConnection:
        """`user`'s connection: SASL_PLAINTEXT, or SASL_SSL trusting the node's CA."""
        connection = self.kafka.security.connection(self.kafka.bootstrap, user)
        if not tls:
            return connection
        return replace(
            connection,
            bootstrap_servers=self.kafka.tls_bootstrap,
            protocol=SecurityProtocol.SASL_SSL,
            ssl_ca_file=self.ca_file,
        )

    def stored_messages(self, topic: str) -> int:
        """How many messages `topic` holds, as the admin sees it."""
        return topic_size(self.kafka.connection, topic)


@dataclass
class Delivery:
    """What became of one produce: its delivery report and the client's own errors."""

    error: KafkaError | None
    client_errors: list[KafkaError]

    @property
    def codes(self) -> set[int]:
        return {error.code() for error in self.client_errors}


def produce_one(connection: KafkaConnection, topic: str, value: bytes) -> Delivery:
    """Send `value` as Vigil's producers do (idempotent, acks=all); wait for its report.

    A client told that its sign-in or the broker's certificate failed gives up at once; one
    that is only disconnected (PLAINTEXT against SASL, TLS against plain Kafka) gives up
    after REFUSED_TIMEOUT_MS, long enough for any broker that would take it to do so.
    """
    client_errors: list[KafkaError] = []
    reports: list[KafkaError | None] = []
    producer = Producer(
        vigil_producer_config(
            connection,
            **{"message.timeout.ms": REFUSED_TIMEOUT_MS, "error_cb": client_errors.append},
        )
    )
    producer.produce(topic, value, on_delivery=lambda err, _msg: reports.append(err))
    deadline = time.monotonic() + REFUSED_TIMEOUT_MS / 1000 + 10
    while not reports and time.monotonic() < deadline:
        producer.poll(0.1)
        if any(error.code() in _DECISIVE for error in client_errors):
            producer.purge()  # its report follows, as _PURGE_QUEUE
    assert producer.flush(10) == 0
    [error] = reports
    return Delivery(error, client_errors)


def forged_sample() -> bytes:
    """A well-formed sample of a patient nobody admitted."""
    return json.dumps(vitals_message(uuid.uuid4(), 0, name="Invented Patient")).encode()
