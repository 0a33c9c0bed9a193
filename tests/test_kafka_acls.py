"""Forged vitals through Kafka: on a secured Apache Kafka node, only signed-in identities get
in, and each may do only its app's part (shared.kafka_acls)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from flask import Flask

from patient_app.producer import VitalsProducer
from shared.kafka import KafkaConnection, admin_client, client_config
from tests.helpers import consumer_of, data_app_on, simulator_sample, stored_rows
from tests.secured_kafka import Ward, forged_sample, produce_one

pytestmark = [pytest.mark.apache_kafka, pytest.mark.integration]


def read_errors(
    connection: KafkaConnection, topic: str, group: str, wait_for: Callable[..., object]
) -> tuple[list[bytes], set[int]]:
    """Try to read `topic` from the start; the values read and the error codes met."""
    consumer = Consumer(client_config(connection, **{"group.id": group}))
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(2)])
    values: list[bytes] = []
    codes: set[int] = set()

    def refused() -> bool:
        for message in consumer.consume(10, 0.5):
            if message.error():
                codes.add(message.error().code())
            else:
                values.append(message.value())
        return bool(values) or KafkaError.TOPIC_AUTHORIZATION_FAILED in codes

    try:
        wait_for(refused, 20, message=f"a read of {topic} to end")
    finally:
        consumer.close()
    return values, codes


@pytest.mark.parametrize(
    "who",
    ["no credentials", "a wrong password", "a user the broker does not know"],
)
def test_a_producer_that_cannot_sign_in_is_refused_and_nothing_lands(ward: Ward, who: str):
    kafka = ward.kafka
    connection = {
        "no credentials": KafkaConnection(kafka.bootstrap),
        "a wrong password": KafkaConnection(
            kafka.bootstrap, "SASL_PLAINTEXT", "SCRAM-SHA-512", "patient_app", "guessed"
        ),
        "a user the broker does not know": KafkaConnection(
            kafka.bootstrap, "SASL_PLAINTEXT", "SCRAM-SHA-512", "mallory", "guessed"
        ),
    }[who]

    delivery = produce_one(connection, ward.vitals, forged_sample())

    assert delivery.error is not None, "a forged sample was accepted"
    if who != "no credentials":
        # The broker said why; a PLAINTEXT client is only disconnected.
        assert KafkaError._AUTHENTICATION in delivery.codes
    assert ward.stored_messages(ward.vitals) == 0


def test_the_simulator_identity_writes_vitals_and_nothing_else(ward: Ward, wait_for):
    patient_app = ward.identity("patient_app")

    assert produce_one(patient_app, ward.vitals, b"sample").error is None
    for topic in (ward.dead_letters, f"{ward.vitals}-invented"):
        refused = produce_one(patient_app, topic, b"forged")
        assert refused.error is not None
        assert refused.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    values, codes = read_errors(patient_app, ward.vitals, f"reader-{ward.group}", wait_for)
    assert values == []
    assert KafkaError.TOPIC_AUTHORIZATION_FAILED in codes
    assert ward.stored_messages(ward.dead_letters) == 0


def test_the_simulator_identity_cannot_hide_readings(ward: Ward):
    """Neither by deleting them, nor by moving data_app's group past them."""
    assert produce_one(ward.identity("patient_app"), ward.vitals, b"real reading").error is None
    admin = admin_client(ward.identity("patient_app"))

    deleted = admin.delete_records([TopicPartition(ward.vitals, p, -1) for p in range(2)])
    for future in deleted.values():
        with pytest.raises(KafkaException) as refused:
            future.result(10)
        assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    skipped = admin.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(ward.group, [TopicPartition(ward.vitals, 0, 1000)])]
    )
    with pytest.raises(KafkaException) as refused:
        skipped[ward.group].result(10)
    assert refused.value.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED
    assert ward.stored_messages(ward.vitals) == 1


def test_the_data_app_identity_reads_vitals_and_writes_dead_letters_only(ward: Ward, wait_for):
    assert produce_one(ward.identity("patient_app"), ward.vitals, b"sample").error is None
    data_app_identity = ward.identity("data_app")

    values, _codes = read_errors(data_app_identity, ward.vitals, ward.group, wait_for)
    assert values == [b"sample"]
    assert produce_one(data_app_identity, ward.dead_letters, b"rejected").error is None
    forged = produce_one(data_app_identity, ward.vitals, forged_sample())
    assert forged.error is not None
    assert forged.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert ward.stored_messages(ward.vitals) == 1


def test_the_gateway_identity_writes_vitals_and_dead_letters_only(ward: Ward, wait_for):
    gateway = ward.identity("gateway_app")

    assert produce_one(gateway, ward.vitals, b"sample").error is None
    assert produce_one(gateway, ward.dead_letters, b"unusable HL7").error is None
    refused = produce_one(gateway, f"{ward.vitals}-invented", b"forged")
    assert refused.error is not None
    assert refused.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # It cannot read the patients' vitals back, nor the dead letters.
    for topic in (ward.vitals, ward.dead_letters):
        values, codes = read_errors(gateway, topic, f"reader-{ward.group}", wait_for)
        assert values == []
        assert KafkaError.TOPIC_AUTHORIZATION_FAILED in codes


@pytest.fixture
def secured_data_app(
    ward: Ward, sqlite_url: str, redis_settings, request: pytest.FixtureRequest
) -> Iterator[Flask]:
    """data_app signed in as its own identity, through the settings a deployment sets; over
    TLS when the test is parametrised with `tls`."""
    identity = ward.identity("data_app", tls=request.param)
    with data_app_on(
        {
            "DATABASE_URL": sqlite_url,
            "KAFKA_BOOTSTRAP_SERVERS": identity.bootstrap_servers,
            "KAFKA_SECURITY_PROTOCOL": str(identity.protocol),
            "KAFKA_SASL_MECHANISM": str(identity.sasl_mechanism),
            "KAFKA_SASL_USERNAME": "data_app",
            "KAFKA_SASL_PASSWORD": identity.password,
            "KAFKA_SSL_CA_FILE": identity.ssl_ca_file,
            "KAFKA_TOPIC": ward.vitals,
            "KAFKA_DLQ_TOPIC": ward.dead_letters,
            "KAFKA_GROUP_ID": ward.group,
            **redis_settings,
        }
    ) as app:
        yield app


@pytest.mark.parametrize(
    "secured_data_app", [False, True], ids=["SASL_PLAINTEXT", "SASL_SSL"], indirect=True
)
def test_a_simulated_sample_reaches_the_database_through_the_secured_broker(
    ward: Ward, secured_data_app: Flask, wait_for
):
    """The project's own producer and consumer, each signed in as its identity; a malformed
    message goes to the dead-letter topic through data_app's identity too."""
    tls = secured_data_app.config["KAFKA_SSL_CA_FILE"] is not None
    producer = VitalsProducer(ward.identity("patient_app", tls), ward.vitals)
    producer.start()
    consumer_of(secured_data_app).start()
    try:
        patient = uuid.uuid4()
        producer.send_metrics(patient, simulator_sample(patient))
        assert produce_one(ward.identity("patient_app"), ward.vitals, b"not json").error is None
        wait_for(lambda: stored_rows(secured_data_app) == 1, message="the sample stored")
        wait_for(lambda: ward.stored_messages(ward.dead_letters) == 1, message="one dead letter")
    finally:
        producer.stop()
    assert producer.stats["delivered"] == 1
