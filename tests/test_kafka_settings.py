"""Kafka client security settings: checked when an app is created, passed to every client."""

from __future__ import annotations

from pathlib import Path

import pytest

import data_app
import patient_app
from shared.config import COMMON_SETTINGS, ConfigError, load_settings
from shared.kafka import KafkaConnection, admin_client, client_config, producer_config

SCRAM = {
    "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "KAFKA_SASL_USERNAME": "patient_app",
    "KAFKA_SASL_PASSWORD": "s3cret-pw",
}


def connection_from(environ: dict[str, str]) -> KafkaConnection:
    return KafkaConnection.from_config(load_settings(COMMON_SETTINGS, environ, dotenv=False))


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL"}, "KAFKA_SECURITY_PROTOCOL"),
        ({**SCRAM, "KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM"),
        ({**SCRAM, "KAFKA_SASL_USERNAME": ""}, "KAFKA_SASL_USERNAME"),
        ({**SCRAM, "KAFKA_SASL_PASSWORD": ""}, "KAFKA_SASL_PASSWORD"),
        # PLAIN would send the password itself over an unencrypted connection.
        ({**SCRAM, "KAFKA_SASL_MECHANISM": "PLAIN"}, "KAFKA_SASL_MECHANISM"),
        ({**SCRAM, "KAFKA_SASL_PASSWORD_FILE": "/nonexistent/kafka-password"}, "PASSWORD_FILE"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_FILE": "/nonexistent/ca.pem"}, "CA_FILE"),
        # A CA that is silently ignored would leave the operator believing the broker checked.
        ({"KAFKA_SSL_CA_FILE": __file__}, "KAFKA_SSL_CA_FILE"),
    ],
)
def test_a_connection_that_would_not_be_secure_stops_the_app(environ, variable):
    with pytest.raises(ConfigError, match=variable):
        connection_from(environ)


@pytest.mark.parametrize("create_app", [data_app.create_app, patient_app.create_app])
def test_each_kafka_app_checks_its_credentials_when_it_is_created(create_app, monkeypatch):
    """Started with SASL but no username, an app refuses to start rather than run open."""
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ConfigError, match="KAFKA_SASL_USERNAME"):
        create_app({"TESTING": True})


def test_every_client_gets_the_credentials(tmp_path: Path):
    password_file = tmp_path / "kafka-password"
    password_file.write_text("from-a-file\n")
    environ = {**SCRAM, "KAFKA_SASL_PASSWORD_FILE": str(password_file)}
    del environ["KAFKA_SASL_PASSWORD"]
    kafka = connection_from(environ)
    expected = {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "patient_app",
        "sasl.password": "from-a-file",
    }

    assert expected.items() <= producer_config(kafka).items()
    assert expected.items() <= client_config(kafka, **{"group.id": "g"}).items()
    admin_client(kafka)  # librdkafka accepts the settings
    # Logged as its address only.
    assert "from-a-file" not in f"{kafka} {kafka!r}"


def test_a_password_in_both_places_is_refused(tmp_path: Path):
    password_file = tmp_path / "kafka-password"
    password_file.write_text("other")
    with pytest.raises(ConfigError, match="KAFKA_SASL_PASSWORD_FILE"):
        connection_from({**SCRAM, "KAFKA_SASL_PASSWORD_FILE": str(password_file)})
