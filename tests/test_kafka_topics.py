"""Vigil's topic settings, and the one partitioner every producer uses."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer

from data_app import create_app as create_data_app
from patient_app import create_app as create_patient_app
from shared.config import ConfigError
from shared.kafka import TopicSettings, ensure_topic, producer_config
from tests.helpers import murmur2, murmur2_partition


def test_producers_place_a_patient_where_the_java_clients_would(kafka_bootstrap, topic_names):
    topic = topic_names["KAFKA_TOPIC"]
    ensure_topic(kafka_bootstrap, topic, TopicSettings(partitions=6))
    producer = Producer(producer_config(kafka_bootstrap))
    placed: dict[bytes, int] = {}

    def delivered(err, message) -> None:
        assert err is None, err
        placed[message.key()] = message.partition()

    keys = [str(uuid.UUID(int=n * 7919 + 1)).encode() for n in range(40)]
    for key in keys:
        producer.produce(topic, key=key, value=b"{}", on_delivery=delivered)
    assert producer.flush(30) == 0
    assert placed == {key: murmur2_partition(key, 6) for key in keys}
    # The same patient always lands on the same partition; different ones spread out.
    assert len(set(placed.values())) > 1


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"abc", 479470107),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
    ],
)
def test_murmur2_matches_kafkas_own_test_values(key, expected):
    # From Kafka's UtilsTest: this test's copy of the Java hash is the Java hash.
    assert murmur2(key) == expected


def test_topic_settings_come_from_the_apps_config():
    config = {
        "KAFKA_REPLICATION_FACTOR": "3",
        "KAFKA_MIN_INSYNC_REPLICAS": "2",
        "KAFKA_TOPIC_PARTITIONS": "12",
        "KAFKA_RETENTION_HOURS": "24",
    }
    app = create_data_app({"TESTING": True, **{k: int(v) for k, v in config.items()}})
    settings = TopicSettings.from_config(app.config)
    assert settings == TopicSettings(
        partitions=12, replication_factor=3, min_insync_replicas=2, retention_hours=24
    )
    topic = settings.new_topic("vitals")
    assert (topic.num_partitions, topic.replication_factor) == (12, 3)
    assert topic.config["min.insync.replicas"] == "2"
    assert topic.config["retention.ms"] == str(24 * 3600 * 1000)
    assert TopicSettings().with_partitions(1).partitions == 1


@pytest.mark.parametrize("create_app", [create_data_app, create_patient_app])
def test_more_insync_replicas_than_replicas_is_refused_with_the_variable(create_app):
    with pytest.raises(ConfigError, match="KAFKA_MIN_INSYNC_REPLICAS: must not exceed"):
        create_app({"TESTING": True, "KAFKA_REPLICATION_FACTOR": 1, "KAFKA_MIN_INSYNC_REPLICAS": 2})


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("KAFKA_COMPRESSION", "brotli"),
        ("KAFKA_REPLICATION_FACTOR", "0"),
        ("KAFKA_RETENTION_HOURS", "-1"),
        ("KAFKA_MIN_INSYNC_REPLICAS", "x"),
    ],
)
def test_bad_topic_settings_name_the_variable(monkeypatch, name, raw):
    monkeypatch.setenv(name, raw)
    with pytest.raises(ConfigError, match=f"^{name}: "):
        create_data_app({"TESTING": True})
