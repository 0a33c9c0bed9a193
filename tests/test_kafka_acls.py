"""Forged vitals through Kafka: on a secured Apache Kafka node, only signed-in identities get
in, and each may do only its app's part (shared.kafka_acls)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from flask import Flask

import data_app
from devserver.apache_kafka import KafkaCluster
from patient_app.producer import VitalsProducer
from shared.config import load_settings
from shared.db import db, migrate
from shared.kafka import KafkaConnection, SecurityProtocol, admin_client, client_config
from shared.kafka import producer_config as vigil_producer_config
from shared.kafka_acls import ACL_SETTINGS, provision
from tests.certificates import Authority
from tests.helpers import (
    consumer_of,
    simulator_sample,
    stored_rows,
    topic_size,
    vitals_message,
)

pytestmark = [pytest.mark.apache_kafka, pytest.mark.integration]

# A refused delivery gives up after this long instead of the default 30 s.
REFUSED_TIMEOUT_MS = 1500


@dataclass(frozen=True, slots=True)
class Ward:
    """This test's topics and data_app group on the secured node, with Vigil's ACLs on them."""

    kafka: KafkaCluster
    vitals: str
    dead_letters: str
    group: str
    ca_file: Path

    def identity(self, user: str, tls: bool = False) -> KafkaConnection:
        """`user`'s connection: SASL_PLAINTEXT, or SASL_SSL trusting the node's CA."""
        connection = self.kafka.security.connection(self.kafka.bootstrap, user)
        if not tls:
            return connection
        return replace(
            connection,
            bootstrap_servers=self.kafka.tls_bootstrap,
            protocol=SecurityProtocol.SASL_SSL,
            ssl_ca_file=self.ca_file,
        )

    def stored_messages(self, topic: str) -> int:
        """How many messages `topic` holds, as the admin sees it."""
        consumer = Consumer(client_config(self.kafka.connection, **{"group.id": "admin"}))
        try:
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            ends = [
                consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                for partition in partitions
            ]
        finally:
            consumer.close()
        return sum(high - low for low, high in ends)


@pytest.fixture
def ward(
    secured_kafka: KafkaCluster, topic_names: dict[str, str], kafka_authority: Authority
) -> Ward:
    """Topics and ACLs made as a deployment makes them: `python -m shared.kafka_acls`, run
    with the admin's credentials."""
    ward = Ward(
        secured_kafka,
        topic_names["KAFKA_TOPIC"],
        topic_names["KAFKA_DLQ_TOPIC"],
        f"data-{uuid.uuid4().hex[:10]}",
        kafka_authority.file,
    )
    admin = secured_kafka.connection
    environ = {
        "KAFKA_BOOTSTRAP_SERVERS": admin.bootstrap_servers,
        "KAFKA_SECURITY_PROTOCOL": str(admin.protocol),
        "KAFKA_SASL_USERNAME": admin.username,
        "KAFKA_SASL_PASSWORD": admin.password,
        "KAFKA_TOPIC": ward.vitals,
        "KAFKA_DLQ_TOPIC": ward.dead_letters,
        "KAFKA_GROUP_ID": ward.group,
        "KAFKA_TOPIC_PARTITIONS": "2",
    }
    provision(load_settings(ACL_SETTINGS, environ, dotenv=False))
    return ward


@dataclass
class Delivery:
    """What became of one produce: its delivery report and the client's own errors."""

    error: KafkaError | None
    client_errors: list[KafkaError]

    @property
    def codes(self) -> set[int]:
        return {error.code() for error in self.client_errors}


def produce_one(connection: KafkaConnection, topic: str, value: bytes) -> Delivery:
    """Send `value` as Vigil's producers do (idempotent, acks=all); wait for its report."""
    client_errors: list[KafkaError] = []
    reports: list[KafkaError | None] = []
    producer = Producer(
        vigil_producer_config(
            connection,
            **{"message.timeout.ms": REFUSED_TIMEOUT_MS, "error_cb": client_errors.append},
        )
    )
    producer.produce(topic, value, on_delivery=lambda err, _msg: reports.append(err))
    assert producer.flush(REFUSED_TIMEOUT_MS / 1000 + 10) == 0
    [error] = reports
    return Delivery(error, client_errors)


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


def forged_sample() -> bytes:
    """A well-formed sample of a patient nobody admitted."""
    return json.dumps(vitals_message(uuid.uuid4(), 0, name="Invented Patient")).encode()


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


@pytest.fixture
def secured_data_app(
    ward: Ward, sqlite_url: str, redis_settings, request: pytest.FixtureRequest
) -> Iterator[Flask]:
    """data_app signed in as its own identity, through the settings a deployment sets; over
    TLS when the test is parametrised with `tls`."""
    identity = ward.identity("data_app", tls=request.param)
    app = data_app.create_app(
        {
            "TESTING": True,
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
            "KAFKA_SESSION_TIMEOUT_MS": 2000,
            "CONSUMER_POLL_TIMEOUT": 0.2,
            **redis_settings,
        }
    )
    migrate(db.engine(app))
    yield app
    consumer_of(app).stop()
    db.engine(app).dispose()


@pytest.mark.parametrize(
    "secured_data_app", [False, True], ids=["SASL_PLAINTEXT", "SASL_SSL"], indirect=True
)
def test_a_simulated_sample_reaches_the_database_through_the_secured_broker(
    ward: Ward, secured_data_app: Flask, wait_for
):
    tls = secured_data_app.config["KAFKA_SSL_CA_FILE"] is not None
    producer = VitalsProducer(ward.identity("patient_app", tls), ward.vitals)
    producer.start()
    consumer_of(secured_data_app).start()
    try:
        patient = uuid.uuid4()
        producer.send_metrics(patient, simulator_sample(patient))
        wait_for(lambda: stored_rows(secured_data_app) == 1, message="the sample stored")
    finally:
        producer.stop()
    assert producer.stats["delivered"] == 1


@pytest.mark.parametrize("impostor", ["without TLS", "with a certificate of another CA"])
def test_a_tls_client_sends_nothing_to_a_broker_that_cannot_prove_who_it_is(
    ward: Ward, tansu_bootstrap: str, tmp_path: Path, impostor: str
):
    """Someone answering on the broker's address must not receive vitals (or the password)."""
    connection = ward.identity("patient_app", tls=True)
    if impostor == "without TLS":
        # The embedded broker stands in for one that speaks plain Kafka and takes anything.
        connection = replace(connection, bootstrap_servers=tansu_bootstrap)
    else:
        other = Authority.create(tmp_path, "someone-else")
        connection = replace(connection, ssl_ca_file=other.file)

    delivery = produce_one(connection, ward.vitals, forged_sample())

    assert delivery.error is not None, "the sample went to a broker nobody vouched for"
    assert ward.stored_messages(ward.vitals) == 0
    if impostor == "without TLS":
        assert topic_size(tansu_bootstrap, ward.vitals) == 0
    else:
        assert KafkaError._SSL in delivery.codes  # the certificate did not verify
