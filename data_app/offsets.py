"""The consumer's offsets: committing a batch, rewinding a failed one, the lag behind the end."""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

log = logging.getLogger(__name__)

# Commit failures that only mean "the group moved on": the new owner re-reads and the
# idempotent insert absorbs the repeat.
_SURVIVABLE_COMMIT_ERRORS = {
    KafkaError._NO_OFFSET,
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError._ASSIGNMENT_LOST,
    KafkaError._STATE,
}


def rewind(consumer: Consumer, first_offsets: dict[tuple[str, int], int]) -> None:
    """Seek back to the start of a failed batch so it is read again."""
    for (topic, partition), offset in first_offsets.items():
        try:
            consumer.seek(TopicPartition(topic, partition, offset))
        except KafkaException as exc:
            # Partition revoked meanwhile: its new owner starts from the committed offset.
            log.warning(
                "could not rewind partition", extra={"partition": partition, "error": str(exc)}
            )


def commit_offsets(consumer: Consumer, next_offsets: dict[tuple[str, int], int]) -> None:
    """Commit the offsets after a batch; a commit the group has moved past is skipped."""
    offsets = [
        TopicPartition(topic, partition, offset)
        for (topic, partition), offset in next_offsets.items()
    ]
    try:
        consumer.commit(offsets=offsets, asynchronous=False)
    except KafkaException as exc:
        if exc.args[0].code() not in _SURVIVABLE_COMMIT_ERRORS:
            raise
        log.warning(
            "offset commit skipped after a rebalance; messages may be re-read",
            extra={"error": str(exc)},
        )


def consumer_lag(consumer: Consumer) -> int:
    """Messages behind the end of each partition assigned to `consumer`."""
    lag = 0
    unread: list[tuple[TopicPartition, int, int]] = []
    for tp in consumer.assignment():
        # The ends the last fetches reported: asking the broker instead stalled the loop
        # ~45 ms a partition on the embedded broker, which also answered wrong ends.
        low, high = consumer.get_watermark_offsets(tp, cached=True)
        if high < 0:  # nothing fetched from this partition yet
            continue
        position = consumer.position([tp])[0].offset
        if position >= 0:
            lag += max(0, high - position)
        else:
            unread.append((tp, low, high))
    if unread:
        # Nothing read from these since they were assigned: reading starts at the group's
        # committed offset (after a restart, often the end), not at the start of the log.
        committed = {
            (tp.topic, tp.partition): tp.offset
            for tp in consumer.committed([tp for tp, _low, _high in unread], timeout=2)
        }
        for tp, low, high in unread:
            offset = committed.get((tp.topic, tp.partition), -1)
            lag += max(0, high - (offset if offset >= 0 else low))
    return lag
