"""Publisher: sends to Kafka and says when the broker has the message, so an HL7 sender is
answered AA only for what is stored (acks=all, idempotent: shared.kafka.producer_config).

A producer stuck for good (shared.producer_recovery) is replaced: what it held fails, its
senders are answered AE and resend, and the new producer takes their messages."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message

from shared.kafka import Connectable, TopicSettings, ensure_vigil_topics
from shared.producer_recovery import RecoveringProducer, needs_new_producer, producer_health

log = logging.getLogger(__name__)

# How long a message may wait for the broker before its sender is told AE (and resends).
DELIVERY_TIMEOUT_MS = 10_000
# Shorter than that: a producer that delivers nothing while the broker answers is replaced
# before its messages time out, or each resend would wait on the stuck producer again.
STALL_TIMEOUT_S = 5.0


class Publisher(RecoveringProducer):
    """One producer for the vitals and the dead-letter topics, its callbacks served by a
    thread of its own; `publish` returns a future the delivery report resolves."""

    def __init__(
        self,
        bootstrap: Connectable,
        topic: str,
        dead_letter_topic: str,
        topic_settings: TopicSettings = TopicSettings(),  # noqa: B008  (frozen)
        compression: str = "lz4",
        stall_timeout: float = STALL_TIMEOUT_S,
    ) -> None:
        super().__init__(bootstrap, compression, DELIVERY_TIMEOUT_MS, stall_timeout, log)
        self.topic = topic
        self.dead_letter_topic = dead_letter_topic
        self.topic_settings = topic_settings
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
        self._producer = self._new_producer()
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

    def health(self) -> dict[str, Any]:
        producer = self._producer
        pending = len(producer) if producer is not None else 0
        return {**producer_health(self.bootstrap, pending, self._watch), **self.stats}

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
                self._watch.progressed()
                future.set_result(None)
                return
            if needs_new_producer(err):
                self._fatal = str(err)
            future.set_exception(KafkaException(err))

        with self._lock:
            if self._fatal is not None:
                self._recreate(self._fatal)
            try:
                self._producer.produce(
                    topic, key=key, value=value, headers=headers, on_delivery=on_delivery
                )
            except (BufferError, KafkaException) as exc:
                if isinstance(exc, KafkaException) and needs_new_producer(exc.args[0]):
                    self._fatal = str(exc)
                future.set_exception(exc)
        return future

    def _recreate(self, reason: str) -> None:
        """Replace the producer; what the old one held fails (its senders resend)."""
        # Each purged message's report fails its future, so its sender is answered.
        self._replace(reason, lambda producer, timeout: producer.poll(timeout))

    def _serve(self) -> None:
        """Serve the delivery reports, and replace a producer that is stuck: nothing else
        would, since its senders wait on it rather than send more."""
        while not self._stop.is_set():
            with self._lock:
                if self._fatal is not None:
                    self._recreate(self._fatal)
                elif self._watch.stalled(len(self._producer)):
                    self._recreate("no delivery for a while although the broker answers")
                producer = self._producer
            try:
                producer.poll(0.1)
            except KafkaException as exc:
                if exc.args[0].fatal():
                    self._fatal = str(exc)
                log.error("producer error", extra={"error": str(exc)})
