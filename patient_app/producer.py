"""VitalsProducer: sends vitals samples to the topic, keyed by patient uuid."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException, Message, Producer

from shared.kafka import Connectable, TopicSettings, ensure_topic
from shared.producer_recovery import (
    PURGED,
    RecoveringProducer,
    needs_new_producer,
    producer_health,
)
from shared.sample import vitals_errors
from shared.telemetry import SAMPLES_DELIVERY_FAILED, SAMPLES_PRODUCED

from .exceptions import KafkaError

log = logging.getLogger(__name__)

# Samples queued while the broker is away are kept this long before they count as lost.
MESSAGE_TIMEOUT_MS = 300_000


class VitalsProducer(RecoveringProducer):
    """A confluent-kafka producer that rebuilds itself instead of going silent: when it is
    stuck for good (shared.producer_recovery), the service builds a fresh producer and re-sends
    what the old one still held."""

    transport = "kafka"

    def __init__(
        self,
        bootstrap_servers: Connectable,
        topic: str,
        topic_settings: TopicSettings = TopicSettings(),  # noqa: B008  (frozen)
        compression: str = "lz4",
        stall_timeout: float = 10.0,
    ) -> None:
        super().__init__(bootstrap_servers, compression, MESSAGE_TIMEOUT_MS, stall_timeout, log)
        self.topic = topic
        self.topic_settings = topic_settings
        self._resend: list[tuple[bytes | None, bytes]] = []
        self.stats.update({"sent": 0, "delivered": 0, "failed": 0, "resent": 0})

    def start(self) -> None:
        """Find or create the topic, then create the producer."""
        try:
            ensure_topic(self.bootstrap, self.topic, self.topic_settings)
        except KafkaException as exc:
            # The broker may come up later; the topic is auto-created on first produce.
            log.warning(
                "could not ensure topic; will rely on auto-creation",
                extra={"topic": self.topic, "error": str(exc)},
            )
        with self._lock:
            self._producer = self._new_producer()
        log.info("producer started", extra={"topic": self.topic, "bootstrap": self.bootstrap})

    def stop(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (up to `timeout` seconds) and drop the producer."""
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            undelivered = producer.flush(timeout)
            log.info("producer stopped", extra={"undelivered": undelivered, **self.stats})

    def send_metrics(self, patient_uuid: uuid.UUID, sample: dict[str, Any]) -> None:
        """Validate `sample` against the shared schema and queue it for delivery."""
        errors = vitals_errors(sample)
        if errors:
            raise ValueError(f"refusing to send an invalid sample: {errors}")
        payload = json.dumps(sample).encode()
        with self._lock:
            if self._producer is None:
                raise KafkaError("The producer is not running.")
            if self._fatal is not None:
                self._recreate(self._fatal)
            elif self._watch.stalled(len(self._producer)):
                self._recreate("no delivery for a while although the broker answers")
            try:
                self._produce(str(patient_uuid), payload)
            except BufferError:
                # Local queue full (broker down for a while): serve callbacks, try once more.
                self._serve(self._producer, 1.0)
                self._produce(str(patient_uuid), payload)
            except KafkaException as exc:
                # After a fatal error, produce() fails with _FATAL, an error not flagged fatal.
                if not needs_new_producer(exc.args[0]):
                    raise KafkaError(str(exc)) from exc
                self._recreate(self._fatal or str(exc))
                self._produce(str(patient_uuid), payload)
            SAMPLES_PRODUCED.inc()
            self._serve(self._producer, 0)

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports."""
        with self._lock:
            if self._producer is not None:
                self._serve(self._producer, timeout)

    def health(self) -> dict[str, Any]:
        """Whether the broker answers, and how many samples wait for delivery."""
        with self._lock:
            undelivered = len(self._producer) if self._producer is not None else 0
        health = producer_health(self.bootstrap, undelivered, self._watch)
        return {**health, "topic": self.topic, **self.stats}

    def _produce(self, key: str | bytes | None, payload: bytes) -> None:
        self._producer.produce(self.topic, key=key, value=payload, on_delivery=self._on_delivery)
        self.stats["sent"] += 1

    def _recreate(self, reason: str) -> None:
        """Replace the producer; what the old one still held is sent again by the new one."""
        # Purged messages come back through _on_delivery, which keeps them for re-sending.
        self._replace(reason, self._serve)
        resend, self._resend = self._resend, []
        for key, payload in resend:
            # Re-sending may repeat a sample the broker did store; data_app skips repeats.
            self._produce(key, payload)
        self.stats["resent"] += len(resend)

    def _serve(self, producer: Producer, timeout: float) -> None:
        """Serve `producer`'s callbacks. confluent-kafka raises a fatal error from poll()
        instead of passing it to error_cb: it is noted, and the next send recreates."""
        try:
            producer.poll(timeout)
        except KafkaException as exc:
            if not exc.args[0].fatal():
                raise
            self._on_error(exc.args[0])

    def _on_delivery(self, err: RdKafkaError | None, msg: Message) -> None:
        if err is None:
            self.stats["delivered"] += 1
            self._watch.progressed()
            return
        if needs_new_producer(err):
            self._fatal = str(err)
        if err.code() in PURGED or self._fatal is not None:
            # Purged by _recreate, or failed with the producer itself: the next one sends it.
            self._resend.append((msg.key(), msg.value()))
            return
        self.stats["failed"] += 1
        SAMPLES_DELIVERY_FAILED.inc()
        self.stats["last_error"] = str(err)
        log.error(
            "sample not delivered",
            extra={"error": str(err), "patient_uuid": (msg.key() or b"").decode(errors="replace")},
        )
