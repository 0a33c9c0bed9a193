"""data_app's metrics: what the consumer read, stored and dead-lettered, and the alerts raised.

The registry is one per process and shared by every test, so each test measures deltas.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from data_app.services import DataService
from shared.auth.roles import Role, Scope
from shared.db import db
from shared.models import Notification
from shared.news2 import BANDS
from shared.sample import VitalsSample
from tests.auth import token_for
from tests.bearer import (
    client_with,
    expired_token,
    foreign_key_token,
    tampered_token,
    unsigned_token,
)
from tests.helpers import CRITICAL_VITALS as CRITICAL
from tests.helpers import NORMAL_VITALS as NORMAL
from tests.helpers import consumer_of, stored_rows, vitals_message

pytestmark = pytest.mark.integration

CONSUMER_METRICS = (
    "vigil_samples_consumed_total",
    "vigil_samples_stored_total",
    "vigil_samples_dead_lettered_total",
    "vigil_batch_commit_seconds_count",
)

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    # What is counted does not depend on the database; storage runs on both elsewhere.
    return sqlite_url


def value(name: str, **labels: str) -> float:
    """The sample's current value in this process; 0 for a series not yet created."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def snapshot(*names: str) -> dict[str, float]:
    return {name: value(name) for name in names}


def test_consumer_counts_consumed_stored_and_dead_lettered_samples(
    data_app: Flask,
    produce: Callable[..., None],
    topic_names: dict[str, str],
    wait_for: Callable[..., object],
) -> None:
    pid = uuid.uuid4()
    before = snapshot(*CONSUMER_METRICS)
    consumer = consumer_of(data_app)
    produce(
        topic_names["KAFKA_TOPIC"],
        [
            vitals_message(pid, 0),
            b"not json",
            vitals_message(pid, 1),
            {**vitals_message(pid, 5), "bp": "80/120"},
            vitals_message(pid, 2),
        ],
        key=str(pid),
    )
    consumer.start()

    # The status is updated after the counters, in the same thread.
    wait_for(lambda: consumer.status["consumed"] == 5, message="5 consumed messages")
    after = snapshot(*CONSUMER_METRICS)
    assert after["vigil_samples_consumed_total"] - before["vigil_samples_consumed_total"] == 5
    assert after["vigil_samples_stored_total"] - before["vigil_samples_stored_total"] == 3
    assert (
        after["vigil_samples_dead_lettered_total"] - before["vigil_samples_dead_lettered_total"]
        == 2
    )
    batches = after["vigil_batch_commit_seconds_count"] - before["vigil_batch_commit_seconds_count"]
    assert 1 <= batches <= 5
    assert stored_rows(data_app) == 3

    # A repeat is read but not stored again.
    produce(
        topic_names["KAFKA_TOPIC"], [vitals_message(pid, 0), vitals_message(pid, 3)], key=str(pid)
    )
    wait_for(lambda: consumer.status["consumed"] == 7, message="7 consumed messages")
    again = snapshot(*CONSUMER_METRICS)
    assert again["vigil_samples_consumed_total"] - after["vigil_samples_consumed_total"] == 2
    assert again["vigil_samples_stored_total"] - after["vigil_samples_stored_total"] == 1
    assert again["vigil_samples_dead_lettered_total"] == after["vigil_samples_dead_lettered_total"]
    assert again["vigil_batch_commit_seconds_count"] > after["vigil_batch_commit_seconds_count"]


def stream(patient: uuid.UUID, *phases: tuple[dict, int]) -> list[VitalsSample]:
    """Samples five seconds apart, `count` of each phase's vitals in turn."""
    samples = []
    for vitals, count in phases:
        for _ in range(count):
            samples.append(
                VitalsSample(
                    patient_uuid=patient,
                    patient_name="Maria Sokolova",
                    timestamp=START + timedelta(seconds=5 * len(samples)),
                    **vitals,
                )
            )
    return samples


def test_band_changes_count_alerts_by_band_and_notifications_as_alerts(data_app: Flask) -> None:
    before_bands = {band: value("vigil_alerts_raised_total", band=band) for band in BANDS}
    before_sources = {
        source: value("vigil_notifications_created_total", source=source)
        for source in ("alert", "api")
    }
    service = DataService(data_app)

    # Low, then high for a while, then low long enough to count as recovered.
    assert service.store(stream(uuid.uuid4(), (NORMAL, 3), (CRITICAL, 6), (NORMAL, 5))) == 14

    raised = {
        band: value("vigil_alerts_raised_total", band=band) - before_bands[band] for band in BANDS
    }
    assert raised == {"low": 1, "low-medium": 0, "medium": 0, "high": 1}
    # Every notification data_app made counts as an alert's: the two band alerts, and the
    # limit alarms 30 s of critical vitals raise.
    with db.sessionmaker(data_app)() as session:
        made = session.scalar(select(func.count()).select_from(Notification))
    assert made > 2
    assert (
        value("vigil_notifications_created_total", source="alert") == before_sources["alert"] + made
    )
    assert value("vigil_notifications_created_total", source="api") == before_sources["api"]


def test_a_batch_without_band_change_raises_no_alert(data_app: Flask) -> None:
    before = value("vigil_notifications_created_total", source="alert")
    before_bands = {band: value("vigil_alerts_raised_total", band=band) for band in BANDS}

    assert DataService(data_app).store(stream(uuid.uuid4(), (NORMAL, 5))) == 5

    assert value("vigil_notifications_created_total", source="alert") == before
    assert {band: value("vigil_alerts_raised_total", band=band) for band in BANDS} == before_bands


def test_data_app_serves_its_metrics(client: FlaskClient) -> None:
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    for name in (
        "vigil_samples_consumed_total",
        "vigil_consumer_lag",
        "vigil_batch_commit_seconds_bucket",
        "vigil_alerts_raised_total",
    ):
        assert name in response.text
    # The app's own requests are labelled as data_app's.
    labels = {"service": "data_app", "method": "GET", "endpoint": "/metrics", "status": "200"}
    before = value("vigil_http_requests_total", **labels)
    client.get("/metrics")
    assert value("vigil_http_requests_total", **labels) == before + 1


def test_a_prometheus_token_reads_the_metrics(data_app: Flask) -> None:
    scraper = client_with(data_app, token_for(Role.INTEGRATION, [Scope.METRICS_READ]))
    response = scraper.get("/metrics")
    assert response.status_code == 200
    assert "vigil_samples_consumed_total" in response.text


def test_anonymous_metrics_are_401(anonymous: FlaskClient) -> None:
    response = anonymous.get("/metrics")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert response.json["code"] == 401
    assert "vigil_samples_consumed_total" not in response.text


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda: tampered_token(token_for(Role.VIEWER), role="admin"), id="tampered"),
        pytest.param(expired_token, id="expired"),
        pytest.param(foreign_key_token, id="foreign-key"),
        pytest.param(unsigned_token, id="unsigned"),
    ],
)
def test_metrics_with_a_token_that_does_not_verify_are_401(data_app: Flask, make_token) -> None:
    response = client_with(data_app, make_token()).get("/metrics")
    assert response.status_code == 401
    assert "vigil_samples_consumed_total" not in response.text


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: token_for(Role.CLINICIAN), id="clinician"),
        pytest.param(lambda: token_for(Role.VIEWER), id="viewer"),
        pytest.param(lambda: token_for(Role.INTEGRATION, [Scope.PATIENTS_READ]), id="reader"),
    ],
)
def test_metrics_are_403_for_other_roles_and_scopes(data_app: Flask, token) -> None:
    response = client_with(data_app, token()).get("/metrics")
    assert response.status_code == 403
    assert "vigil_samples_consumed_total" not in response.text


def test_health_is_public(anonymous: FlaskClient) -> None:
    # The consumer is not started here: unhealthy, but answered without sign-in (the
    # consumer's figures to admins only: test_health_disclosure).
    response = anonymous.get("/health")
    assert (response.status_code, response.json) == (503, {"status": "degraded"})
