"""`/metrics` of the monitor API: request counts by route template, the rate limit's
exemption, and the WebSocket clients gauge.

The registry is one per process and shared by every test, so each test measures deltas.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import pytest
import websocket
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.serving import make_server

from monitor_app import create_app
from monitor_app.live.hub import EventHub, TooManyClientsError
from shared.db import db, migrate
from tests.auth import Account, client_for
from tests.helpers import serving

REQUESTS = "vigil_http_requests_total"
LATENCY_COUNT = "vigil_http_request_duration_seconds_count"
CLIENTS = "vigil_websocket_clients"
PATIENTS = "/api/v1/patients"
PATIENT_METRICS = "/api/v1/patient/<uuid:patient_uuid>/metrics"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    # What is counted does not depend on the database; its queries are tested elsewhere.
    return sqlite_url


def value(name: str, **labels: str) -> float:
    """The sample's current value in this process; 0 for a series not yet created."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def requests(endpoint: str, status: str, method: str = "GET") -> float:
    return value(REQUESTS, service="monitor_app", method=method, endpoint=endpoint, status=status)


def series_labels(metric: str) -> list[dict[str, str]]:
    """The labels of every sample `metric` has in this process."""
    return [
        sample.labels
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == metric
    ]


def test_metrics_answer_in_the_prometheus_text_format(client: FlaskClient) -> None:
    client.get(PATIENTS)

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "version=" in response.content_type
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert families["vigil_http_requests"].type == "counter"
    assert families["vigil_http_request_duration_seconds"].type == "histogram"
    assert families["vigil_websocket_clients"].type == "gauge"
    assert any(
        s.labels.get("endpoint") == PATIENTS and s.labels["service"] == "monitor_app"
        for s in families["vigil_http_requests"].samples
    )


def test_requests_are_counted_and_timed_by_route_template(client: FlaskClient) -> None:
    patient = str(uuid.uuid4())
    before = {
        "list": requests(PATIENTS, "200"),
        "missing": requests(PATIENT_METRICS, "404"),
        "list_timed": value(LATENCY_COUNT, service="monitor_app", method="GET", endpoint=PATIENTS),
        "missing_timed": value(
            LATENCY_COUNT, service="monitor_app", method="GET", endpoint=PATIENT_METRICS
        ),
    }

    assert client.get(PATIENTS).status_code == 200
    assert client.get(f"/api/v1/patient/{patient}/metrics").status_code == 404
    assert client.get(f"/api/v1/patient/{patient}/metrics").status_code == 404

    assert requests(PATIENTS, "200") == before["list"] + 1
    assert requests(PATIENT_METRICS, "404") == before["missing"] + 2
    assert (
        value(LATENCY_COUNT, service="monitor_app", method="GET", endpoint=PATIENTS)
        == before["list_timed"] + 1
    )
    assert (
        value(LATENCY_COUNT, service="monitor_app", method="GET", endpoint=PATIENT_METRICS)
        == before["missing_timed"] + 2
    )
    # One series per endpoint, never one per patient.
    assert not [labels for labels in series_labels(REQUESTS) if patient in labels["endpoint"]]
    scraped = client.get("/metrics").text
    assert f'endpoint="{PATIENT_METRICS}"' in scraped
    assert patient not in scraped


def test_unknown_paths_share_one_series(client: FlaskClient) -> None:
    path = f"/no/such/{uuid.uuid4().hex}"
    before = requests("<unmatched>", "404")

    assert client.get(path).status_code == 404
    assert client.get(path + "/deeper").status_code == 404

    assert requests("<unmatched>", "404") == before + 2
    assert not [labels for labels in series_labels(REQUESTS) if "/no/such" in labels["endpoint"]]


def test_a_created_notification_is_counted_as_from_the_api(
    client: FlaskClient, admin: Account
) -> None:
    before = {
        source: value("vigil_notifications_created_total", source=source)
        for source in ("api", "alert")
    }
    posted_before = requests("/api/v1/notifications", "201", method="POST")

    response = client.post(
        "/api/v1/notifications",
        # To the caller: a recipient must exist.
        json={"user_id": str(admin.id), "title": "Check", "text": "Bed 3 pump alarm"},
    )

    assert response.status_code == 201, response.json
    assert value("vigil_notifications_created_total", source="api") == before["api"] + 1
    assert value("vigil_notifications_created_total", source="alert") == before["alert"]
    assert requests("/api/v1/notifications", "201", method="POST") == posted_before + 1


def test_metrics_are_not_rate_limited(
    database_url: str, redis_settings: dict[str, str], admin: Account
) -> None:
    # The limiter keeps its counts in the test's Redis namespace, as in production.
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "TESTING": True,
            **redis_settings,
            "RATELIMIT_ENABLED": True,
            "RATE_LIMIT": "2 per minute",
        }
    )
    migrate(db.engine(app))
    client = client_for(app, admin.token)
    limited_before = requests(PATIENTS, "429")
    try:
        scrapes = [client.get("/metrics").status_code for _ in range(5)]
        # The scrapes used none of the budget, and the limit is really on.
        api_calls = [client.get(PATIENTS).status_code for _ in range(3)]
        scrapes += [client.get("/metrics").status_code for _ in range(3)]
    finally:
        db.engine(app).dispose()

    assert scrapes == [200] * 8
    assert api_calls == [200, 200, 429]
    assert requests(PATIENTS, "429") == limited_before + 1


# -- WebSocket clients ---------------------------------------------------------------------------


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    """`app` behind a real threaded HTTP server (a WebSocket needs a socket); its ws:// base."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    with serving(server, "test-server"):
        yield f"ws://127.0.0.1:{server.server_port}"


def connect(base: str, account: Account) -> websocket.WebSocket:
    ws = websocket.create_connection(
        f"{base}/api/v1/ws", timeout=10, header=[f"Authorization: Bearer {account.token}"]
    )
    # The hub subscribes the client before it says hello.
    assert json.loads(ws.recv())["type"] == "hello"
    return ws


def test_websocket_clients_gauge_follows_connections(
    served: str, admin: Account, wait_for: Callable[..., object]
) -> None:
    base = value(CLIENTS)
    ws_requests_before = sum(
        value(REQUESTS, **labels)
        for labels in series_labels(REQUESTS)
        if labels["endpoint"] == "/api/v1/ws"
    )

    first = connect(served, admin)
    try:
        assert value(CLIENTS) == base + 1
        second = connect(served, admin)
        try:
            assert value(CLIENTS) == base + 2
        finally:
            second.close()
        # The server notices a departure at its next idle check.
        wait_for(
            lambda: value(CLIENTS) == base + 1,
            timeout=10,
            message="the gauge to drop after the second client left",
        )
    finally:
        first.close()
    wait_for(
        lambda: value(CLIENTS) == base, timeout=10, message="the gauge back to where it started"
    )
    # A stream's duration is not a request latency: WebSocket sessions are not counted.
    assert (
        sum(
            value(REQUESTS, **labels)
            for labels in series_labels(REQUESTS)
            if labels["endpoint"] == "/api/v1/ws"
        )
        == ws_requests_before
    )


def test_event_hub_counts_each_client_once(redis_settings: dict[str, str]) -> None:
    hub = EventHub(
        redis_settings["REDIS_EVENTS_URL"],
        f"{redis_settings['REDIS_NAMESPACE']}:events",
        max_clients=2,
    )
    base = value(CLIENTS)

    first, second = hub.subscribe(), hub.subscribe()
    assert value(CLIENTS) == base + 2
    with pytest.raises(TooManyClientsError):
        hub.subscribe()
    assert value(CLIENTS) == base + 2

    hub.unsubscribe(first)
    hub.unsubscribe(first)
    assert value(CLIENTS) == base + 1

    # Stopping closes the remaining streams; their handlers unsubscribe afterwards.
    hub.stop(timeout=1)
    assert value(CLIENTS) == base
    hub.unsubscribe(second)
    assert value(CLIENTS) == base
