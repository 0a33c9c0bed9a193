"""KafkaService: sends vitals samples to the topic, keyed by patient uuid."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any

from confluent_kafka import KafkaException, Message, Producer
from confluent_kafka import KafkaError as RdKafkaError

from shared.kafka import broker_reachable, ensure_topic, producer_config
from shared.schemas import vitals_schema

from .exceptions import KafkaError

log = logging.getLogger(__name__)


class KafkaService:
    """A confluent-kafka producer that recreates itself after a fatal error.

    An idempotent producer raises a fatal error when the broker forgets its producer id
    (after a broker restart, say); it would then refuse every send, so instead of going
    silent the service builds a fresh producer on the next send.
    """

    def __init__(self, bootstrap_servers: str, topic: str, partitions: int = 6) -> None:
        self.bootstrap = bootstrap_servers
        self.topic = topic
        self.partitions = partitions
        self._producer: Producer | None = None
        self._lock = threading.Lock()
        self._fatal: str | None = None
        self.stats = {"sent": 0, "delivered": 0, "failed": 0, "producer_restarts": 0,
                      "last_error": None}

    def start(self) -> None:
        """Find or create the topic, then create the producer."""
        try:
            ensure_topic(self.bootstrap, self.topic, self.partitions)
        except KafkaException as exc:
            # The broker may come up later; the topic is auto-created on first produce.
            log.warning("could not ensure topic; will rely on auto-creation",
                        extra={"topic": self.topic, "error": str(exc)})
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
        errors = vitals_schema.validate(sample)
        if errors:
            raise ValueError(f"refusing to send an invalid sample: {errors}")
        payload = json.dumps(sample).encode()
        with self._lock:
            if self._producer is None:
                raise KafkaError("The producer is not running.")
            if self._fatal is not None:
                self._recreate()
            try:
                self._produce(str(patient_uuid), payload)
            except BufferError:
                # Local queue full (broker down for a while): serve callbacks, try once more.
                self._producer.poll(1.0)
                self._produce(str(patient_uuid), payload)
            except KafkaException as exc:
                if not exc.args[0].fatal():
                    raise KafkaError(str(exc)) from exc
                self._fatal = str(exc)
                self._recreate()
                self._produce(str(patient_uuid), payload)
            self._producer.poll(0)

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports."""
        with self._lock:
            if self._producer is not None:
                self._producer.poll(timeout)

    def health(self) -> dict[str, Any]:
        return {"kafka": "ok" if broker_reachable(self.bootstrap, 1.0) else "unreachable",
                "topic": self.topic, **self.stats}

    def _produce(self, key: str, payload: bytes) -> None:
        self._producer.produce(self.topic, key=key, value=payload, on_delivery=self._on_delivery)
        self.stats["sent"] += 1

    def _new_producer(self) -> Producer:
        return Producer(producer_config(self.bootstrap, error_cb=self._on_error, logger=log))

    def _recreate(self) -> None:
        log.error("producer hit a fatal error; recreating it", extra={"error": self._fatal})
        old = self._producer
        self._producer = self._new_producer()
        self._fatal = None
        self.stats["producer_restarts"] += 1
        if old is not None:
            # Queued messages of a fenced producer can never be delivered by it.
            old.purge()
            old.flush(0)

    def _on_error(self, err: RdKafkaError) -> None:
        if err.fatal():
            self._fatal = str(err)
        self.stats["last_error"] = str(err)
        log.warning("producer error", extra={"error": str(err), "fatal": err.fatal()})

    def _on_delivery(self, err: RdKafkaError | None, msg: Message) -> None:
        if err is None:
            self.stats["delivered"] += 1
            return
        self.stats["failed"] += 1
        self.stats["last_error"] = str(err)
        if err.fatal():
            self._fatal = str(err)
        log.error("sample not delivered", extra={
            "error": str(err), "patient_uuid": (msg.key() or b"").decode(errors="replace")})
