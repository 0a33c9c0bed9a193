"""When an idempotent Kafka producer is stuck for good and only a new one gets through.

Two ways it happens: a fatal error (the producer then refuses every send), and a broker that
restarted without its state (the producer retries with a producer id the broker no longer
knows, forever, without ever reporting a fatal error). patient_app's VitalsProducer and
gateway_app's Publisher both watch for them and build a fresh producer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Producer

from shared.kafka import Connectable, broker_reachable

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
