"""The real Apache Kafka broker as devserver.apache_kafka runs it: one node, a three-node KRaft
cluster, and nodes killed and started again on their data."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from devserver.apache_kafka import KafkaCluster, broker_ready, single_node_command
from devserver.ports import free_port
from devserver.processes import wait_until
from shared.kafka import admin_client, producer_config
from tests.helpers import read_messages

pytestmark = pytest.mark.apache_kafka


def fresh_topic() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def produce_acknowledged(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """Send `values` idempotently with acks=all; return once the broker acknowledged all."""
    producer = Producer(producer_config(bootstrap))
    errors: list[str] = []
    for value in values:
        producer.produce(topic, value, on_delivery=lambda err, _msg: err and errors.append(err))
    assert producer.flush(30) == 0, "messages were not acknowledged in time"
    assert not errors, errors


def read_partition(bootstrap: str, topic: str, count: int, partition: int = 0) -> list[bytes]:
    """`count` values from the start of one partition, read without a consumer group: the
    offsets topic, which a group needs, may be short of nodes while one is down."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    values: list[bytes] = []

    def read_all() -> bool:
        values.extend(m.value() for m in consumer.consume(count, 0.5) if not m.error())
        return len(values) >= count

    try:
        wait_until(read_all, 30, message=f"{count} messages from {topic}-{partition}")
    finally:
        consumer.close()
    return values


def create_topic(bootstrap: str, topic: str, partitions: int, replicas: int) -> None:
    admin = admin_client(bootstrap)  # kept: its futures fail once the client is collected
    admin.create_topics([NewTopic(topic, partitions, replicas)])[topic].result(30)


def test_one_node_gives_back_what_an_idempotent_acks_all_producer_sent(apache_kafka):
    topic = fresh_topic()  # created by the first produce

    produce_acknowledged(apache_kafka.bootstrap, topic, [b"pulse 72"])

    [message] = read_messages(apache_kafka.bootstrap, topic, 1)
    assert message.value() == b"pulse 72"


def test_three_nodes_form_a_cluster_that_keeps_three_in_sync_copies(apache_kafka_cluster):
    kafka = apache_kafka_cluster
    bootstrap = kafka.bootstrap
    admin = admin_client(bootstrap)
    cluster = admin.describe_cluster().result(10)
    assert sorted(node.id for node in cluster.nodes) == [1, 2, 3]
    topic = fresh_topic()

    create_topic(bootstrap, topic, partitions=3, replicas=3)
    produce_acknowledged(bootstrap, topic, [b"spo2 97"])

    for partition in range(3):
        wait_until(
            lambda p=partition: sorted(kafka.in_sync_replicas(topic, p)) == [1, 2, 3],
            message=f"three in-sync replicas of {topic}-{partition}",
        )


def test_a_killed_node_comes_back_with_every_acknowledged_message(tmp_path: Path):
    values = [f"sample {i}".encode() for i in range(100)]
    with KafkaCluster(1, tmp_path / "data", tmp_path / "logs") as kafka:
        topic = fresh_topic()
        produce_acknowledged(kafka.bootstrap, topic, values)

        kafka.kill(1)
        kafka.start_node(1)

        messages = read_messages(kafka.bootstrap, topic, len(values))
    assert sorted(message.value() for message in messages) == sorted(values)


def test_a_cluster_that_loses_a_leader_elects_another_and_loses_nothing(tmp_path: Path):
    values = [f"sample {i}".encode() for i in range(100)]
    with KafkaCluster(3, tmp_path / "data", tmp_path / "logs") as kafka:
        topic = fresh_topic()
        create_topic(kafka.bootstrap, topic, partitions=1, replicas=3)
        produce_acknowledged(kafka.bootstrap, topic, values)
        leader = kafka.leader_of(topic, 0)

        kafka.kill(leader)
        new_leader = wait_until(
            lambda: (node := kafka.leader_of(topic, 0)) not in (leader, -1) and node,
            message=f"a new leader of {topic}-0",
        )
        assert new_leader != leader
        assert read_partition(kafka.bootstrap, topic, len(values)) == values

        kafka.start_node(leader)
        wait_until(
            lambda: leader in kafka.in_sync_replicas(topic, 0),
            message=f"node {leader} back in sync on {topic}-0",
        )


def test_the_make_run_node_keeps_its_data_from_one_run_to_the_next(tmp_path: Path):
    """`make run KAFKA_ENGINE=apache` formats var/kafka/data once, then runs on what it holds."""
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    topic = fresh_topic()
    read_back = []
    for run in ("first", "second"):
        with (tmp_path / "kafka.log").open("ab") as log:
            node = subprocess.Popen(
                single_node_command(port, tmp_path), stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_until(lambda: broker_ready(bootstrap, {1}, 1), 60, message=f"the {run} run")
            if run == "first":
                produce_acknowledged(bootstrap, topic, [b"temperature 36.9"])
            else:
                read_back = read_messages(bootstrap, topic, 1)
        finally:
            node.terminate()
            node.wait(30)
    assert [message.value() for message in read_back] == [b"temperature 36.9"]
