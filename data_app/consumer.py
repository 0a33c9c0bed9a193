"""The consumer thread: vitals from Kafka into the database, bad messages to the dead-letter topic.

Delivery is at-least-once and storage idempotent, so every sample is stored exactly once:
offsets are committed only after the database transaction and the dead-letter writes have
succeeded; a redelivered message hits the (patient, timestamp) unique key and is skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from flask import Flask

from data_app.dead_letter import DeadLetterWriter
from data_app.decoding import InvalidSample, decode_sample
from data_app.offsets import commit_offsets, consumer_lag, rewind
from data_app.refusals import refusal_reason
from data_app.services import DataService
from shared.background import BackgroundThread, StopRequested, backoff
from shared.kafka import KafkaConnection, TopicSettings, ensure_vigil_topics
from shared.sample import VitalsSample
from shared.telemetry import (
    BATCH_COMMIT_SECONDS,
    CONSUMER_LAG,
    SAMPLES_CONSUMED,
    SAMPLES_DEAD_LETTERED,
    SAMPLES_STORED,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

LAG_REFRESH_SECONDS = 5.0
FETCH_WAIT_MS = 50


class VitalsConsumer(BackgroundThread):
    """Runs the consumer loop in its own thread; `start`/`stop` are called by the server."""

    failure_message = "consumer loop error"

    def __init__(self, app: Flask) -> None:
        super().__init__("vitals-consumer")
        self.data_service = DataService(app)
        config = app.config
        self.topic: str = config["KAFKA_TOPIC"]
        self.bootstrap = KafkaConnection.from_config(config)
        self.batch_size: int = config["CONSUMER_BATCH_SIZE"]
        self.poll_timeout: float = config["CONSUMER_POLL_TIMEOUT"]
        self.max_clock_skew = timedelta(seconds=config["MAX_CLOCK_SKEW_SECONDS"])
        self.max_age = timedelta(days=config["RAW_RETENTION_DAYS"])
        self.degraded_after: int = config["CONSUMER_DEGRADED_AFTER_FAILURES"]
        max_message_bytes = config["KAFKA_MAX_MESSAGE_BYTES"]
        self.topic_settings = TopicSettings.from_config(config)
        session_timeout = config["KAFKA_SESSION_TIMEOUT_MS"]
        self.consumer_config = {
            **self.bootstrap.client_config(),
            "group.id": config["KAFKA_GROUP_ID"],
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": session_timeout,
            "heartbeat.interval.ms": max(100, min(3000, session_timeout // 4)),
            # A fetch waits at most this long for new data. Apache Kafka answers as soon as
            # data arrives anyway; the embedded broker holds the fetch for the full wait, which
            # at the default (500 ms) added that much to every sample's way to the screen.
            "fetch.wait.max.ms": FETCH_WAIT_MS,
            # librdkafka's defaults ask for 1 MiB a partition and 50 MiB a fetch; a fetch now
            # holds at most one broker-sized message, and one larger still comes alone.
            "fetch.max.bytes": max_message_bytes,
            "max.partition.fetch.bytes": max_message_bytes,
        }
        self._consumer: Consumer | None = None
        self.dead_letters = DeadLetterWriter(
            self.bootstrap, config["KAFKA_DLQ_TOPIC"], config["KAFKA_COMPRESSION"]
        )
        # Set in the consumer thread's own callbacks (see `_on_lost`).
        self._assignment_lost = False
        self._reconnect_requested = False
        self._lag_checked_at = 0.0
        self.status: dict[str, Any] = {
            "state": "stopped",
            "assigned_partitions": 0,
            "lag": None,
            "consumed": 0,
            "stored": 0,
            "duplicates": 0,
            "dead_lettered": 0,
            "last_batch_at": None,
            "last_error": None,
            # Failed attempts at a batch since the last one that was committed.
            "failures_in_a_row": 0,
        }

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the consumer thread (after the server has forked)."""
        if not self.running:
            self.status["state"] = "starting"
        super().start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the loop to finish its batch, leave the group and join the thread."""
        super().stop(timeout)
        self.status["state"] = "stopped"

    def _setup(self) -> None:
        self._connect()
        log.info(
            "consumer started", extra={"topic": self.topic, "dlq_topic": self.dead_letters.topic}
        )
        self.status["state"] = "running"

    def _work(self) -> float:
        if self._reconnect_requested:
            self._reconnect()
        self.process_messages(self._next_batch())
        self._refresh_lag()
        return 0.0

    def _failed(self, exc: Exception) -> float:
        # Never let one bad batch kill ingest: note the error, back off, carry on.
        self.status["last_error"] = repr(exc)
        self.status["failures_in_a_row"] += 1
        return super()._failed(exc)

    def degraded_reason(self) -> str | None:
        """Why /health should say degraded although the loop runs, or None."""
        failures = self.status["failures_in_a_row"]
        if failures < self.degraded_after:
            return None
        return f"{failures} batch attempts in a row failed: {self.status['last_error']}"

    def _teardown(self) -> None:
        self._close_clients()
        log.info("consumer stopped", extra={"stored": self.status["stored"]})

    def _connect(self) -> None:
        """Make sure both topics exist, then create the consumer and the dead-letter producer."""

        def ensure_topics() -> None:
            ensure_vigil_topics(
                self.bootstrap, self.topic, self.dead_letters.topic, self.topic_settings
            )

        self._retry_until_stopped(ensure_topics, "creating topics", logging.WARNING, KafkaException)
        self._consumer = Consumer(self.consumer_config, logger=log)
        self._consumer.subscribe(
            [self.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self.dead_letters.open()

    def _close_clients(self) -> None:
        self.dead_letters.close()
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def _reconnect(self) -> None:
        """Leave the group and join it again as a new member, once the topics exist."""
        self.status["state"] = "reconnecting"
        self._close_clients()
        self._connect()
        # Only now: should connecting fail, the next turn of the loop tries again.
        self._reconnect_requested = False
        self.status["state"] = "running"
        log.info("consumer reconnected", extra={"topic": self.topic})

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.status["assigned_partitions"] = len(partitions)
        log.info("partitions assigned", extra={"partitions": [p.partition for p in partitions]})
        if self._assignment_lost and not partitions:
            self._reconnect_requested = True
        self._assignment_lost = False

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.status["assigned_partitions"] = 0
        log.info("partitions revoked", extra={"partitions": [p.partition for p in partitions]})

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """The group forgot this member: its session expired, or the broker restarted empty.

        librdkafka rejoins by itself at once. If the broker lost its state, the topic may not
        exist yet: the member is then handed no partitions, and librdkafka asks again only
        when its metadata refresh (every 5 minutes) finds another partition count, never if
        the topic comes back as it was. `_on_assign` then asks the loop to reconnect, which
        re-creates the topics. Not earlier: leaving while that rejoin is under way leaves a
        member behind that the embedded broker never evicts, and the group never settles.
        """
        self.status["assigned_partitions"] = 0
        self._assignment_lost = True
        log.warning(
            "partition assignment lost", extra={"partitions": [p.partition for p in partitions]}
        )

    def _retry_until_stopped(
        self,
        action: Callable[[], T],
        what: str,
        level: int,
        errors: type[Exception] | tuple[type[Exception], ...] = Exception,
        give_up: Callable[[Exception], object] = lambda _exc: None,
    ) -> T:
        """Run `action` until it succeeds, backing off; StopRequested if the service stops.

        An error for which `give_up` is true is raised at once.
        """
        attempt = 0
        while True:
            try:
                return action()
            except errors as exc:
                if give_up(exc):
                    raise
                attempt += 1
                log.log(
                    level,
                    f"{what} failed, retrying",
                    extra={"error": repr(exc), "attempt": attempt},
                )
                self.status["last_error"] = repr(exc)
                if self._stop.wait(backoff(attempt)):
                    raise StopRequested from exc

    # -- one batch -------------------------------------------------------------------------
    def _next_batch(self) -> list[Message]:
        """Wait for one message, then take whatever else has already arrived.

        A batch is as large as the backlog (up to the batch size): a quiet ward's samples are
        stored the moment they arrive, a busy one's in bulk. Waiting to fill a fixed batch would
        hold each sample up to the poll timeout at low rates.
        """
        first = self._consumer.consume(1, self.poll_timeout)
        if not first or self.batch_size == 1:
            return first
        return first + self._consumer.consume(self.batch_size - 1, 0)

    def _note_refused(self, rejected: list[tuple[Message, str]]) -> None:
        # After the commit, and never raising: the alarm is worth less than the data flowing.
        try:
            self.data_service.note_refused([message.value() for message, _ in rejected])
        except Exception:
            log.exception("could not raise the invalid-data alarm; ingest goes on")

    def process_messages(self, messages: list[Message]) -> None:
        """Store the good samples, dead-letter the bad ones, then commit the offsets."""
        decoded: list[tuple[Message, VitalsSample]] = []
        rejected: list[tuple[Message, str]] = []
        first_offsets: dict[tuple[str, int], int] = {}
        next_offsets: dict[tuple[str, int], int] = {}
        for message in messages:
            if message.error():
                if message.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("consume error", extra={"error": str(message.error())})
                continue
            partition = (message.topic(), message.partition())
            first_offsets.setdefault(partition, message.offset())
            next_offsets[partition] = message.offset() + 1
            try:
                decoded.append(
                    (message, decode_sample(message.value(), self.max_clock_skew, self.max_age))
                )
            except InvalidSample as exc:
                rejected.append((message, str(exc)))
            except Exception as exc:
                # A decoding bug must cost one message, not stop ingest: raised, it would fail
                # this batch and every reading of it after.
                log.exception("could not decode message", extra={"offset": message.offset()})
                rejected.append((message, f"undecodable: {exc!r}"))
        if not next_offsets:
            return
        started = time.perf_counter()
        # Messages read, good or bad; the broker's error events in the batch are not messages.
        received = len(decoded) + len(rejected)
        try:
            inserted, refused = self._store(decoded)
            rejected += refused
            self.dead_letters.write(rejected)
        except BaseException:
            # Without this, the next batch's commit would cover these offsets too.
            rewind(self._consumer, first_offsets)
            raise
        commit_offsets(self._consumer, next_offsets)
        BATCH_COMMIT_SECONDS.observe(time.perf_counter() - started)
        duplicates = received - len(rejected) - inserted
        SAMPLES_CONSUMED.inc(received)
        SAMPLES_STORED.inc(inserted)
        SAMPLES_DEAD_LETTERED.inc(len(rejected))
        if rejected:
            self._note_refused(rejected)
        self.status.update(
            consumed=self.status["consumed"] + received,
            stored=self.status["stored"] + inserted,
            duplicates=self.status["duplicates"] + duplicates,
            dead_lettered=self.status["dead_lettered"] + len(rejected),
            last_batch_at=datetime.now(UTC).isoformat(),
            failures_in_a_row=0,
        )
        log.info(
            "batch stored",
            extra={
                "messages": received,
                "stored": inserted,
                "duplicates": duplicates,
                "dead_lettered": len(rejected),
            },
        )

    def _store(
        self, decoded: list[tuple[Message, VitalsSample]]
    ) -> tuple[int, list[tuple[Message, str]]]:
        """One transaction for the batch; retried until it succeeds or the service stops.

        Returns the rows inserted and the messages the database refuses outright, with the
        reason: a batch it refuses is halved until they are found, so each costs itself alone.
        """
        if not decoded:
            return 0, []
        samples = [sample for _message, sample in decoded]

        def store() -> int:
            try:
                return self.data_service.store(samples)
            except Exception:
                # Retried here, not in the loop: counted as a failed attempt all the same.
                self.status["failures_in_a_row"] += 1
                raise

        try:
            inserted = self._retry_until_stopped(
                store, "storing batch", logging.ERROR, give_up=refusal_reason
            )
            return inserted, []
        except Exception as exc:
            reason = refusal_reason(exc)
            if reason is None:
                raise
        if len(decoded) == 1:
            message = decoded[0][0]
            log.warning(
                "database refused a sample",
                extra={
                    "reason": reason,
                    "partition": message.partition(),
                    "offset": message.offset(),
                },
            )
            return 0, [(message, reason)]
        middle = len(decoded) // 2
        first, first_refused = self._store(decoded[:middle])
        second, second_refused = self._store(decoded[middle:])
        return first + second, first_refused + second_refused

    def _refresh_lag(self) -> None:
        """Messages behind the end of each assigned partition, refreshed every few seconds."""
        now = time.monotonic()
        if now - self._lag_checked_at < LAG_REFRESH_SECONDS:
            return
        self._lag_checked_at = now
        lag = consumer_lag(self._consumer)
        self.status["lag"] = lag
        CONSUMER_LAG.set(lag)
