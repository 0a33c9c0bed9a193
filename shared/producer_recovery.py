"""When an idempotent Kafka producer is stuck for good and only a new one gets through.

Two ways it happens: a fatal error (the producer then refuses every send), and a broker that
restarted without its state (the producer retries with a producer id the broker no longer
knows, forever, without ever reporting a fatal error). patient_app's VitalsProducer and
gateway_app's Publisher both watch for them and build a fresh producer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Producer

from shared.kafka import Connectable, broker_reachable, producer_config

# Failed because the producer purged its queue: a replaced producer's messages.
PURGED = frozenset({KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT})
# The broker no longer takes this producer's id: a broker restarted without its state may have
# handed the same id to another producer. Each message then fails at once, so nothing stalls;
# only a new producer, with a new id, gets through.
ID_REJECTED = frozenset(
    {
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.UNKNOWN_PRODUCER_ID,
        KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
    }
)


def needs_new_producer(err: KafkaError) -> bool:
    """Whether after `err` only a new producer gets through. After a fatal error, produce()
    fails with _FATAL, an error not itself flagged fatal."""
    return err.fatal() or err.code() in ID_REJECTED or err.code() == KafkaError._FATAL


def purge(
    producer: Producer, serve: Callable[[Producer, float], None], timeout: float = 2.0
) -> None:
    """Drop all `producer` holds, and serve the purged messages' reports (their callbacks see
    a PURGED error and decide what becomes of each) for up to `timeout` seconds."""
    producer.purge(in_queue=True, in_flight=True)
    deadline = time.monotonic() + timeout
    while len(producer) and time.monotonic() < deadline:
        serve(producer, 0.1)


class StallWatch:
    """Messages wait, none was delivered for `stall_timeout`, yet the broker answers: the
    second way a producer is stuck, which it never reports itself."""

    def __init__(
        self,
        bootstrap: Connectable,
        stall_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bootstrap = bootstrap
        self.stall_timeout = stall_timeout
        self._clock = clock
        self._last_progress = clock()
        self._next_check = 0.0

    def progressed(self) -> None:
        """A message was delivered (or nothing waits): the producer is not stuck."""
        self._last_progress = self._clock()

    def waiting_for(self, pending: int) -> float:
        """How long `pending` messages have waited for any delivery."""
        return self._clock() - self._last_progress if pending else 0.0

    def stalled(self, pending: int) -> bool:
        now = self._clock()
        if pending == 0:
            self._last_progress = now
            return False
        if now - self._last_progress < self.stall_timeout or now < self._next_check:
            return False
        # A metadata round trip: at most once per stall_timeout, whatever the send rate.
        self._next_check = now + self.stall_timeout
        return broker_reachable(self.bootstrap, 1.0)


def producer_health(bootstrap: Connectable, pending: int, watch: StallWatch) -> dict[str, Any]:
    """Whether the broker answers, how many messages wait, and whether they wait on a stuck
    producer: what /health says of a producer."""
    return {
        "kafka": "ok" if broker_reachable(bootstrap, 1.0) else "unreachable",
        "undelivered": pending,
        "stalled": watch.waiting_for(pending) > watch.stall_timeout,
    }


class RecoveringProducer:
    """What both producers keep to replace a stuck one: the producer (under `_lock`), the error
    that made it unusable, the stall watch and the restarts counted. Each subclass decides
    when to check and what becomes of the messages the old producer held."""

    def __init__(
        self,
        bootstrap: Connectable,
        compression: str,
        message_timeout_ms: int,
        stall_timeout: float,
        logger: logging.Logger,
    ) -> None:
        self.bootstrap = bootstrap
        self.compression = compression
        self.stall_timeout = stall_timeout
        self._message_timeout_ms = message_timeout_ms
        self._log = logger
        self._producer: Producer | None = None
        self._lock = threading.Lock()
        self._fatal: str | None = None
        self._watch = StallWatch(bootstrap, stall_timeout)
        self.stats: dict[str, Any] = {"producer_restarts": 0, "last_error": None}

    def _new_producer(self) -> Producer:
        return Producer(
            producer_config(
                self.bootstrap,
                self.compression,
                error_cb=self._on_error,
                logger=self._log,
                **{"message.timeout.ms": self._message_timeout_ms},
            )
        )

    def _replace(self, reason: str, serve: Callable[[Producer, float], None]) -> None:
        """A new producer for the stuck one, whose messages are purged and their reports
        served by `serve`. Under `_lock`."""
        self._log.error("producer stuck; recreating it", extra={"reason": reason})
        purge(self._producer, serve)
        self._producer = self._new_producer()
        self._fatal = None
        self._watch.progressed()
        self.stats["producer_restarts"] += 1

    def _on_error(self, err: KafkaError) -> None:
        """Note an error; after a fatal one the producer is replaced."""
        if err.fatal():
            self._fatal = str(err)
        self.stats["last_error"] = str(err)
        self._log.log(
            logging.ERROR if err.fatal() else logging.WARNING,
            "producer error",
            extra={"error": str(err), "fatal": err.fatal()},
        )
