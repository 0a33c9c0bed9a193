"""Two consumers in one group: partitions move between them while a backlog is stored."""

import threading
import time
import uuid

import pytest

from shared.kafka import TopicSettings, ensure_topic
from tests.helpers import both_brokers, consumer_of, stored_rows, vitals_message

pytestmark = pytest.mark.integration

PARTITIONS = 3


@pytest.fixture
def database_url(sqlite_url):
    # The group protocol is what is under test here; storage runs on both backends elsewhere.
    return sqlite_url


@pytest.fixture
def make_member(make_data_app):
    """data_apps in a consumer group of their own, so no other test's members can join it."""
    group = f"rebalance-{uuid.uuid4().hex[:10]}"

    def make(**overrides):
        settings = {
            "KAFKA_GROUP_ID": group,
            "KAFKA_TOPIC_PARTITIONS": PARTITIONS,
            "CONSUMER_BATCH_SIZE": 50,
            **overrides,
        }
        return make_data_app(**settings)

    return make


def stored_count(app) -> int:
    return consumer_of(app).status["stored"]


@both_brokers
def test_rebalance_mid_stream_loses_and_duplicates_nothing(
    make_member, kafka_bootstrap, produce, topic_names, wait_for
):
    topic = topic_names["KAFKA_TOPIC"]
    patients = [uuid.uuid4() for _ in range(8)]
    # The partitions exist before the backlog, so it is spread over all of them.
    ensure_topic(kafka_bootstrap, topic, TopicSettings(partitions=PARTITIONS))
    backlog = 5000
    produce(topic, [vitals_message(patients[i % 8], i // 8) for i in range(backlog)])

    first = make_member(CONSUMER_BATCH_SIZE=10)
    # Until both members share the partitions, the first one's database is slow (at most
    # 200 rows a second), so the rebalance surely lands mid-backlog however loaded the
    # machine is; it still polls between batches, as the group protocol needs.
    rebalanced = threading.Event()
    service = consumer_of(first).data_service
    store = service.store

    def slow_until_rebalanced(samples):
        if not rebalanced.is_set():
            time.sleep(0.05)
        return store(samples)

    service.store = slow_until_rebalanced
    consumer_of(first).start()
    wait_for(lambda: stored_rows(first) >= 200, message="the first member to store some rows")

    second = make_member()
    consumer_of(second).start()
    # Eager rebalance: the first member gives up its partitions, then both get a share.
    wait_for(
        lambda: (
            consumer_of(second).status["assigned_partitions"] > 0
            and consumer_of(first).status["assigned_partitions"] > 0
        ),
        message="partitions shared by both members",
    )
    assert stored_rows(first) < backlog, "the backlog was stored before the rebalance completed"
    assert (
        consumer_of(first).status["assigned_partitions"]
        + consumer_of(second).status["assigned_partitions"]
    ) == PARTITIONS
    rebalanced.set()

    wait_for(lambda: stored_rows(first) == backlog, timeout=60, message=f"{backlog} rows")
    assert consumer_of(first).running and consumer_of(second).running

    # New samples keep flowing after the rebalance.
    produce(topic, [vitals_message(patients[i % 8], backlog // 8 + i // 8) for i in range(80)])
    wait_for(lambda: stored_rows(first) == backlog + 80, message=f"{backlog + 80} rows")

    # A member leaving rebalances again: the other takes over every partition, from the
    # offsets the first one committed.
    consumer_of(first).stop()
    assert not consumer_of(first).running
    wait_for(
        lambda: consumer_of(second).status["assigned_partitions"] == PARTITIONS,
        message="the remaining member to own every partition",
    )
    # A member counts a batch after its transaction commits, so the rows can be seen a moment
    # before the counters; each row is counted once, by the member that inserted it.
    wait_for(
        lambda: stored_count(first) + stored_count(second) == backlog + 80,
        message="both members to have counted every row they stored",
    )
    stored_by_second = stored_count(second)
    produce(topic, [vitals_message(patients[i % 8], backlog // 8 + 10 + i // 8) for i in range(80)])
    wait_for(lambda: stored_rows(second) == backlog + 160, message=f"{backlog + 160} rows")
    wait_for(
        lambda: stored_count(second) >= stored_by_second + 80,
        message="the remaining member to count the 80 rows it stored",
    )
    assert stored_count(second) == stored_by_second + 80
    assert consumer_of(second).running
