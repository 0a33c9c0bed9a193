"""The producer across a broker restart that forgets every topic and producer id.

The embedded broker keeps everything in memory, so a restart hands the idempotent producer
a broker that has never heard of it. Vitals must start flowing again by themselves.
"""

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from devserver.apache_kafka import KafkaCluster
from devserver.processes import RestartableBroker
from patient_app.producer import VitalsProducer
from shared.kafka import TopicSettings, producer_config
from shared.schemas import vitals_schema
from tests.helpers import read_messages, simulator_sample, topic_size

pytestmark = pytest.mark.integration

# A monitor that stays silent longer than this after a broker restart is an outage.
RECOVERY_DEADLINE_S = 30.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RestartableBroker]:
    with RestartableBroker(tmp_path / "tansu.log") as broker:
        yield broker


@pytest.fixture
def kafka(broker: RestartableBroker) -> Iterator[VitalsProducer]:
    service = VitalsProducer(
        broker.bootstrap, f"vitals-{uuid.uuid4().hex[:10]}", TopicSettings(partitions=3)
    )
    service.start()
    yield service
    # Short: after a failed recovery the queue holds samples that will never be delivered.
    service.stop(timeout=1.0)


def take_the_first_producer_id(bootstrap: str, topic: str) -> None:
    """Another producer asks the restarted broker for an id first, and is given the one the
    producer under test had: that one's next send is out of sequence, a fatal error."""
    producer = Producer(producer_config(bootstrap))
    producer.produce(topic, b"first")
    assert producer.flush(10) == 0


@pytest.mark.parametrize("id_taken", [False, True], ids=["stalled", "id-taken"])
def test_samples_flow_again_after_the_broker_restarts_empty(broker, kafka, wait_for, id_taken):
    patient = uuid.uuid4()
    for _ in range(3):
        kafka.send_metrics(patient, simulator_sample(patient))

    def delivered(count: int) -> bool:
        kafka.poll(0)
        return kafka.stats["delivered"] >= count

    wait_for(lambda: delivered(3), message="3 samples delivered before the restart")

    broker.kill()
    broker.start()
    if id_taken:
        take_the_first_producer_id(broker.bootstrap, f"{kafka.topic}.other")
    before = dict(kafka.stats)
    sent_after_kill = 0

    def send_one_and_check() -> bool:
        nonlocal sent_after_kill
        # Sending must never raise while the producer is finding its feet again.
        kafka.send_metrics(patient, simulator_sample(patient))
        sent_after_kill += 1
        return delivered(before["delivered"] + 1)

    try:
        wait_for(
            send_one_and_check,
            timeout=RECOVERY_DEADLINE_S,
            interval=0.2,
            message="a sample delivered to the restarted broker",
        )
    except AssertionError as exc:
        pytest.fail(f"{exc}; producer stats {kafka.stats}")

    # Stalled (the broker reports nothing) or failed fatally: the producer was replaced.
    assert kafka.stats["producer_restarts"] >= 1
    # Nothing sent after the crash is lost: what the stuck producer held was sent again.
    wait_for(
        lambda: kafka.poll(0) or kafka.health()["undelivered"] == 0,
        message="every queued sample delivered",
    )
    assert kafka.stats["failed"] == 0, kafka.stats
    messages = read_messages(broker.bootstrap, kafka.topic, sent_after_kill, timeout=15)
    assert len(messages) == sent_after_kill, kafka.stats
    for message in messages:
        body = json.loads(message.value())
        assert message.key().decode() == body["patient_uuid"] == str(patient)
        assert vitals_schema.validate(body) == {}


@pytest.mark.apache_kafka
def test_samples_sent_while_apache_kafka_restarts_on_its_data_are_delivered_once(
    tmp_path: Path, wait_for
):
    """On a durable broker the producer keeps its id across the restart: what it queued
    while the broker was down is delivered once, in order, with nothing to rebuild."""
    with KafkaCluster(1, tmp_path / "kafka", tmp_path / "kafka-logs") as cluster:
        kafka = VitalsProducer(
            cluster.bootstrap, f"vitals-{uuid.uuid4().hex[:10]}", TopicSettings(partitions=3)
        )
        kafka.start()
        try:
            patient = uuid.uuid4()
            sent = [simulator_sample(patient) | {"pulse": 60 + n} for n in range(3)]
            for body in sent:
                kafka.send_metrics(patient, body)
            wait_for(lambda: kafka.poll(0) or kafka.stats["delivered"] >= 3, message="3 sent")

            cluster.kill(1)
            for n in range(20):
                body = simulator_sample(patient) | {"pulse": 70 + n}
                kafka.send_metrics(patient, body)
                sent.append(body)
            assert kafka.health()["undelivered"] > 0, "sent while down: must wait, not fail"
            cluster.start_node(1)
            wait_for(
                lambda: kafka.poll(0) or kafka.stats["delivered"] >= len(sent),
                timeout=RECOVERY_DEADLINE_S,
                message=f"{len(sent)} samples delivered",
            )
            assert kafka.stats["failed"] == 0, kafka.stats
            # The log holds exactly what was sent, once each (no retry duplicated one), and in
            # order: one patient, one partition.
            assert topic_size(cluster.bootstrap, kafka.topic) == len(sent)
            messages = read_messages(cluster.bootstrap, kafka.topic, len(sent))
            assert [json.loads(m.value()) for m in messages] == sent
        finally:
            kafka.stop(timeout=1.0)
