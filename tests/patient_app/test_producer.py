"""The producer and scheduler against the real broker."""

import json
import uuid

import pytest

from patient_app import create_app
from shared.auth.roles import Role
from shared.lifecycle import background_service, start_background, stop_background
from tests.auth import token_for
from tests.bearer import client_with

pytestmark = pytest.mark.integration


@pytest.fixture
def running_app(kafka_bootstrap, topic_names, redis_settings):
    app = create_app(
        {
            "TESTING": True,
            **redis_settings,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KAFKA_TOPIC": topic_names["KAFKA_TOPIC"],
            "PATIENT_COUNT": 3,
            "PATIENT_NAME": "Bed",
            "METRICS_INTERVAL": 0.2,
            "PATIENT_SEED": 1,
        }
    )
    start_background(app)
    yield app
    stop_background(app)


def test_scheduler_sends_samples_keyed_by_patient(running_app, read_topic, topic_names):
    service = background_service(running_app, "monitoring")
    # Partitions are read one after another, so read enough rounds to see every patient.
    messages = read_topic(topic_names["KAFKA_TOPIC"], 30)
    keys = {m.key().decode() for m in messages}
    assert keys == {str(p) for p in service.patients}
    for message in messages:
        body = json.loads(message.value())
        assert body["patient_uuid"] == message.key().decode()
        assert set(body) >= {"timestamp", "pulse", "resp_rate", "bp", "spo2", "temperature"}


def test_health_and_latest_sample_once_running(running_app, wait_for):
    client = client_with(running_app, token_for(Role.CLINICIAN))
    service = background_service(running_app, "monitoring")
    wait_for(lambda: service.sender.stats["delivered"] >= 3, message="3 delivered samples")
    # The producer's figures are for admins.
    response = client_with(running_app, token_for(Role.ADMIN)).get("/health")
    assert response.status_code == 200
    assert response.json["kafka"]["kafka"] == "ok"
    pid = next(iter(service.patients))
    latest = client.get(f"/api/v1/patients/{pid}").json["latest"]
    assert latest is not None and "/" in latest["bp"]


def test_topic_is_created_at_start(kafka_bootstrap):
    from shared.kafka import admin_client

    topic = f"fresh-{uuid.uuid4().hex[:8]}"
    app = create_app(
        {
            "TESTING": True,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KAFKA_TOPIC": topic,
            "KAFKA_TOPIC_PARTITIONS": 4,
        }
    )
    background_service(app, "monitoring").sender.start()
    try:
        metadata = admin_client(kafka_bootstrap).list_topics(topic, timeout=10)
        assert len(metadata.topics[topic].partitions) == 4
    finally:
        background_service(app, "monitoring").sender.stop()
