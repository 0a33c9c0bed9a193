"""Session fixtures for the real Apache Kafka broker (a JVM per node), imported by conftest.py.

Shared by every test that asks for them: a test that kills or restarts a node makes a private
`KafkaCluster` instead. On the secured node, each test's `ward` has topics and ACLs of its own.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator

import pytest

from devserver.apache_kafka import BrokerSecurity, KafkaCluster
from devserver.tls import ServerCertificate, make_server_certificate
from shared.config import load_settings
from shared.kafka_acls import ACL_SETTINGS, provision
from tests.secured_kafka import Ward

# The identities of a secured broker: the simulators', data_app's and the gateway's
# (shared.kafka_acls).
SECURED_USERS = ("patient_app", "data_app", "gateway_app")


def _cluster(
    factory: pytest.TempPathFactory, size: int, name: str, security: BrokerSecurity | None = None
) -> Iterator[KafkaCluster]:
    home = factory.mktemp(name)
    with KafkaCluster(size, home / "data", home / "logs", security) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def apache_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """One Apache Kafka node for the whole session; `.bootstrap` is its address."""
    yield from _cluster(tmp_path_factory, 1, "apache-kafka")


@pytest.fixture(scope="session")
def apache_kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """Three Apache Kafka nodes (brokers and controllers) for the whole session."""
    yield from _cluster(tmp_path_factory, 3, "apache-kafka-cluster")


@pytest.fixture(scope="session")
def kafka_authority(tmp_path_factory: pytest.TempPathFactory) -> ServerCertificate:
    """The secured node's certificate for 127.0.0.1; `.ca_file` is what clients trust."""
    return make_server_certificate(tmp_path_factory.mktemp("kafka-tls"), hosts=("127.0.0.1",))


@pytest.fixture(scope="session")
def secured_kafka(
    tmp_path_factory: pytest.TempPathFactory, kafka_authority: ServerCertificate
) -> Iterator[KafkaCluster]:
    """One Apache Kafka node that only SASL/SCRAM clients may use, each as far as its ACLs
    allow, on SASL_PLAINTEXT (`.bootstrap`) and SASL_SSL (`.tls_bootstrap`). `.connection` is
    the admin's; `.security.connection(bootstrap, user)` a user's."""
    security = BrokerSecurity(
        secrets.token_urlsafe(16),
        {user: secrets.token_urlsafe(16) for user in SECURED_USERS},
        keystore=kafka_authority.keystore(),
    )
    yield from _cluster(tmp_path_factory, 1, "secured-kafka", security)


@pytest.fixture
def ward(
    secured_kafka: KafkaCluster, topic_names: dict[str, str], kafka_authority: ServerCertificate
) -> Ward:
    """Topics and ACLs made as a deployment makes them: `python -m shared.kafka_acls`, run
    with the admin's credentials."""
    ward = Ward(
        secured_kafka,
        topic_names["KAFKA_TOPIC"],
        topic_names["KAFKA_DLQ_TOPIC"],
        f"data-{uuid.uuid4().hex[:10]}",
        kafka_authority.ca_file,
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
