"""Publisher: sends to Kafka and says when the broker has the message, so an HL7 sender is
answered AA only for what is stored (acks=all, idempotent: shared.kafka.producer_config)."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from datetime import UTC, datetime

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from shared.kafka import Connectable, TopicSettings, ensure_vigil_topics, producer_config

log = logging.getLogger(__name__)

# How long a message may wait for the broker before its sender is told AE (and resends).
DELIVERY_TIMEOUT_MS = 10_000


class Publisher:
    """One producer for the vitals and the dead-letter topics, its callbacks served by a
    thread of its own; `publish` returns a future the delivery report resolves."""

    def __init__(
        self,
        bootstrap: Connectable,
        topic: str,
        dead_letter_topic: str,
        topic_settings: TopicSettings = TopicSettings(),  # noqa: B008  (frozen)
        compression: str = "lz4",
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.dead_letter_topic = dead_letter_topic
        self.topic_settings = topic_settings
        self.compression = compression
        self._producer: Producer | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            ensure_vigil_topics(
                self.bootstrap, self.topic, self.dead_letter_topic, self.topic_settings
            )
        except KafkaException as exc:
            # The producer waits for the broker; the topics are made by whoever reaches it.
            log.warning("could not ensure the topics", extra={"error": str(exc)})
        self._producer = Producer(
            producer_config(
                self.bootstrap,
                self.compression,
                logger=log,
                **{"message.timeout.ms": DELIVERY_TIMEOUT_MS},
            )
        )
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="hl7-publisher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._producer is not None:
            self._producer.flush(timeout)
            self._producer = None

    def publish(self, key: str | None, value: bytes) -> concurrent.futures.Future:
        return self._send(self.topic, key, value, [])

    def dead_letter(
        self, key: str | None, value: bytes, reason: str, peer: str
    ) -> concurrent.futures.Future:
        """The original bytes, with the reason and where they came from in the headers (the
        headers data_app's dead letters carry, so one tool reads both)."""
        headers = [
            ("dlq.reason", reason.encode()),
            ("dlq.source", b"hl7-gateway"),
            ("dlq.peer", peer.encode()),
            ("dlq.failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        return self._send(self.dead_letter_topic, key, value, headers)

    def _send(self, topic, key, value, headers) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                future.set_result(None)
            else:
                future.set_exception(KafkaException(err))

        try:
            self._producer.produce(
                topic, key=key, value=value, headers=headers, on_delivery=on_delivery
            )
        except (BufferError, KafkaException) as exc:
            future.set_exception(exc)
        return future

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                self._producer.poll(0.1)
            except KafkaException as exc:
                log.error("producer error", extra={"error": str(exc)})
