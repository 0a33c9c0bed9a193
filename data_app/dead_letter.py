"""DeadLetterWriter: publishes the messages the consumer rejects to the dead-letter topic.

A dead letter keeps at most the first `COPY_LIMIT_BYTES` of the value (and `KEY_LIMIT_BYTES`
of the key), with the original size in a header: enough to see what was sent, and small
enough for any producer and topic. A full copy of an 11 MB message was larger than the
producer takes: its batch failed and was read again, every second, and ingest stopped.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from confluent_kafka import KafkaError, Message, Producer

from shared.kafka import producer_config
from shared.schemas import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)

# No valid sample is larger, so a sample dead-lettered for its content is copied whole.
COPY_LIMIT_BYTES = MAX_MESSAGE_BYTES
# Vigil's keys are patient uuids (36 bytes).
KEY_LIMIT_BYTES = 1024


class DeadLetterWriter:
    """A producer for the dead-letter topic that starts afresh after a failed delivery."""

    def __init__(self, bootstrap: str, topic: str, compression: str = "lz4") -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.compression = compression
        self._producer: Producer | None = None

    def open(self) -> None:
        self._producer = self._new_producer()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(5)
            self._producer = None

    def _new_producer(self) -> Producer:
        return Producer(producer_config(self.bootstrap, self.compression, logger=log))

    def write(self, rejected: list[tuple[Message, str]]) -> None:
        """Publish each rejected message, with its original bytes and the reason."""
        if not rejected:
            return
        failures: list[str] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(str(err))

        for message, reason in rejected:
            log.warning(
                "dead-lettering message",
                extra={
                    "reason": reason,
                    "partition": message.partition(),
                    "offset": message.offset(),
                },
            )
            key, value = message.key(), message.value()
            headers = [
                ("dlq.reason", reason.encode()),
                ("dlq.topic", message.topic().encode()),
                ("dlq.partition", str(message.partition()).encode()),
                ("dlq.offset", str(message.offset()).encode()),
                ("dlq.failed_at", datetime.now(UTC).isoformat().encode()),
            ]
            if value is not None and len(value) > COPY_LIMIT_BYTES:
                headers.append(("dlq.original_size", str(len(value)).encode()))
                value = value[:COPY_LIMIT_BYTES]
            if key is not None and len(key) > KEY_LIMIT_BYTES:
                headers.append(("dlq.original_key_size", str(len(key)).encode()))
                key = key[:KEY_LIMIT_BYTES]
            self._producer.produce(
                self.topic, key=key, value=value, headers=headers, on_delivery=on_delivery
            )
        remaining = self._producer.flush(10)
        if remaining or failures:
            # A producer stuck on a restarted broker never recovers by itself: start afresh.
            # The caller rewinds the batch and reads it again, so nothing is lost.
            self._producer.purge()
            self._producer = self._new_producer()
            raise RuntimeError(f"dead-letter delivery failed: {failures or remaining}")
