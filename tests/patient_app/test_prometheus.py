"""patient_app's metrics: samples queued for Kafka, samples Kafka never took, and `/metrics`.

The registry is one per process and shared by every test, so each test measures deltas.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import KafkaError, KafkaException
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from devserver.ports import free_port
from patient_app import create_app
from patient_app import producer as producer_module
from patient_app.producer import VitalsProducer
from shared.kafka import TopicSettings
from shared.lifecycle import background_service, start_background, stop_background
from tests.helpers import simulator_sample

PRODUCED = "vigil_samples_produced_total"
FAILED = "vigil_samples_delivery_failed_total"


def value(name: str, **labels: str) -> float:
    """The sample's current value in this process; 0 for a series not yet created."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def kafka(kafka_bootstrap: str, topic_names: dict[str, str]) -> Iterator[VitalsProducer]:
    service = VitalsProducer(
        kafka_bootstrap, topic_names["KAFKA_TOPIC"], TopicSettings(partitions=1)
    )
    service.start()
    yield service
    service.stop()


@pytest.mark.integration
def test_sent_samples_are_counted(kafka: VitalsProducer, wait_for: Callable[..., object]) -> None:
    before = {PRODUCED: value(PRODUCED), FAILED: value(FAILED)}
    patient = uuid.uuid4()

    for _ in range(5):
        kafka.send_metrics(patient, simulator_sample(patient))

    assert value(PRODUCED) == before[PRODUCED] + 5
    wait_for(
        lambda: kafka.poll(0.1) or kafka.stats["delivered"] == 5, message="5 delivered samples"
    )
    assert value(FAILED) == before[FAILED]


def test_an_invalid_sample_is_not_counted(kafka_bootstrap: str) -> None:
    # Validation comes before the producer: no broker is needed to refuse it.
    service = VitalsProducer(kafka_bootstrap, "unused")
    before = value(PRODUCED)
    patient = uuid.uuid4()

    with pytest.raises(ValueError, match="invalid sample"):
        service.send_metrics(patient, {**simulator_sample(patient), "pulse": 900})

    assert value(PRODUCED) == before


def test_samples_kafka_never_takes_are_counted_as_failed(
    monkeypatch: pytest.MonkeyPatch, wait_for: Callable[..., object]
) -> None:
    def no_broker(*_args: object, **_kwargs: object) -> None:
        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "no broker"))

    # Nothing listens on the port; the samples time out quickly instead of after 5 minutes.
    monkeypatch.setattr(producer_module, "ensure_topic", no_broker)
    monkeypatch.setattr(producer_module, "MESSAGE_TIMEOUT_MS", 300)
    service = VitalsProducer(f"127.0.0.1:{free_port()}", "nowhere")
    service.start()
    before = {PRODUCED: value(PRODUCED), FAILED: value(FAILED)}
    patient = uuid.uuid4()
    try:
        for _ in range(2):
            service.send_metrics(patient, simulator_sample(patient))
        wait_for(
            lambda: service.poll(0.1) or service.stats["failed"] == 2,
            timeout=20,
            message="2 samples reported undeliverable",
        )
    finally:
        service.stop(timeout=0)

    assert value(PRODUCED) == before[PRODUCED] + 2
    assert value(FAILED) == before[FAILED] + 2


@pytest.mark.integration
def test_the_scheduler_counts_what_it_sends(
    kafka_bootstrap: str, topic_names: dict[str, str], wait_for: Callable[..., object]
) -> None:
    app = create_app(
        {
            "TESTING": True,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KAFKA_TOPIC": topic_names["KAFKA_TOPIC"],
            "PATIENT_COUNT": 2,
            "PATIENT_NAME": "Bed",
            "METRICS_INTERVAL": 0.2,
            "PATIENT_SEED": 1,
        }
    )
    stats = background_service(app, "monitoring").sender.stats
    before = value(PRODUCED)
    start_background(app)
    try:
        wait_for(lambda: stats["sent"] >= 6, message="6 samples sent")
    finally:
        stop_background(app)

    # Stopped: nothing is sent any more, so both counts are final.
    assert stats["sent"] >= 6
    assert value(PRODUCED) - before == stats["sent"] - stats["resent"]


def test_patient_app_serves_its_metrics(client: FlaskClient) -> None:
    labels = {"service": "patient_app", "method": "GET", "endpoint": "/metrics", "status": "200"}
    before = value("vigil_http_requests_total", **labels)

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "# TYPE vigil_samples_produced_total counter" in response.text
    assert "# TYPE vigil_http_requests_total counter" in response.text
    assert value("vigil_http_requests_total", **labels) == before + 1
