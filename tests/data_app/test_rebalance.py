"""Two consumers in one group: partitions move between them while a backlog is stored."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from shared.db import db
from shared.kafka import ensure_topic
from shared.lifecycle import background_service
from shared.models import PatientMetric

pytestmark = pytest.mark.integration

START = datetime.now(UTC) - timedelta(hours=2)
PARTITIONS = 3


def good(patient_uuid, i):
    return {"patient_uuid": str(patient_uuid), "patient_name": "Anna Kowalska",
            "timestamp": (START + timedelta(seconds=i)).isoformat(), "pulse": 60 + i % 40,
            "resp_rate": 16, "bp": "118/76", "spo2": 97, "temperature": 36.9}


def stored(app) -> int:
    with db.sessionmaker(app)() as session:
        return session.scalar(select(func.count()).select_from(PatientMetric))


def consumer(app):
    return background_service(app, "consumer")


@pytest.fixture
def database_url(sqlite_url):
    # The group protocol is what is under test here; storage runs on both backends elsewhere.
    return sqlite_url


@pytest.fixture
def make_member(make_data_app):
    """data_apps in a consumer group of their own, so no other test's members can join it."""
    group = f"rebalance-{uuid.uuid4().hex[:10]}"

    def make(**overrides):
        settings = {"KAFKA_GROUP_ID": group, "KAFKA_TOPIC_PARTITIONS": PARTITIONS,
                    "CONSUMER_BATCH_SIZE": 50, **overrides}
        return make_data_app(**settings)

    return make


def test_rebalance_mid_stream_loses_and_duplicates_nothing(
        make_member, kafka_bootstrap, produce, topic_names, wait_for):
    topic = topic_names["KAFKA_TOPIC"]
    patients = [uuid.uuid4() for _ in range(8)]
    # The partitions exist before the backlog, so it is spread over all of them.
    ensure_topic(kafka_bootstrap, topic, PARTITIONS)
    # Large enough that the first member is still busy when the rebalance completes: the
    # group takes about 2 s to rebalance, and one member stores several thousand rows a second.
    backlog = 30000
    produce(topic, [good(patients[i % 8], i // 8) for i in range(backlog)])

    # Small batches keep the first member busy for many seconds, far longer than a rebalance.
    first = make_member(CONSUMER_BATCH_SIZE=10)
    consumer(first).start()
    wait_for(lambda: stored(first) >= 200, message="the first member to store some rows")

    second = make_member()
    consumer(second).start()
    # Eager rebalance: the first member gives up its partitions, then both get a share.
    wait_for(lambda: consumer(second).status["assigned_partitions"] > 0
             and consumer(first).status["assigned_partitions"] > 0,
             message="partitions shared by both members")
    assert stored(first) < backlog, "the backlog was stored before the rebalance completed"
    assert (consumer(first).status["assigned_partitions"]
            + consumer(second).status["assigned_partitions"]) == PARTITIONS

    wait_for(lambda: stored(first) == backlog, timeout=30, message=f"{backlog} rows")
    assert consumer(first).running and consumer(second).running

    # New samples keep flowing after the rebalance.
    produce(topic, [good(patients[i % 8], backlog // 8 + i // 8) for i in range(80)])
    wait_for(lambda: stored(first) == backlog + 80, message=f"{backlog + 80} rows")

    # A member leaving rebalances again: the other takes over every partition, from the
    # offsets the first one committed.
    consumer(first).stop()
    assert not consumer(first).running
    wait_for(lambda: consumer(second).status["assigned_partitions"] == PARTITIONS,
             message="the remaining member to own every partition")
    stored_by_second = consumer(second).status["stored"]
    produce(topic, [good(patients[i % 8], backlog // 8 + 10 + i // 8) for i in range(80)])
    wait_for(lambda: stored(second) == backlog + 160, message=f"{backlog + 160} rows")
    assert consumer(second).status["stored"] == stored_by_second + 80
    assert consumer(second).running
