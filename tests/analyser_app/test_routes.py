"""analyser_app over HTTP: the analyse endpoint, its errors, health, OpenAPI and settings."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from analyser_app import create_app
from analyser_app.analysis import analyse
from shared.auth.roles import Role
from shared.config import ConfigError
from tests.analyser_app.conftest import worker_client
from tests.auth import client_for, token_for

ERROR_KEYS = {"code", "status", "message", "errors"}


def test_analyse_answers_the_classification(client):
    text = "Ivan Petrov: SpO2 84%, hypoxia"
    response = client.post("/api/v1/analyse", json={"text": text})
    assert response.status_code == 200
    assert set(response.json) == {"category", "confidence", "keywords"}
    expected = analyse(text)
    assert response.json == {
        "category": expected.category,
        "confidence": expected.confidence,
        "keywords": expected.keywords,
    }
    assert response.json["category"] == "critical"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"json": {}}, "text"),
        ({"json": {"text": ""}}, "text"),
        ({"json": {"text": None}}, "text"),
        ({"json": {"text": 42}}, "text"),
        ({"json": {"text": "x" * 10_001}}, "text"),
        ({"json": {"text": "error", "language": "en"}}, "language"),
        ({"json": ["error"]}, None),
        ({"data": "error", "content_type": "text/plain"}, "text"),
        ({}, "text"),
    ],
)
def test_bad_input_is_422_with_the_shared_body(client, kwargs, field):
    response = client.post("/api/v1/analyse", **kwargs)
    assert response.status_code == 422
    assert set(response.json) == ERROR_KEYS
    assert response.json["code"] == 422
    if field:
        assert field in response.json["errors"]["json"]


def test_longest_allowed_text_is_accepted(client):
    assert client.post("/api/v1/analyse", json={"text": "x" * 10_000}).status_code == 200


def test_malformed_json_is_400_with_the_shared_body(client):
    response = client.post("/api/v1/analyse", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert set(response.json) == ERROR_KEYS


def test_injected_failures_answer_503_with_the_shared_body(make_app):
    client = worker_client(make_app(ANALYSER_FAILURE_RATE=1.0))
    response = client.post("/api/v1/analyse", json={"text": "error"})
    assert response.status_code == 503
    assert set(response.json) == ERROR_KEYS
    assert response.json["code"] == 503
    assert response.json["status"] == "Service Unavailable"


def test_no_failures_by_default(client):
    for _ in range(20):
        assert client.post("/api/v1/analyse", json={"text": "ok"}).status_code == 200


def test_latency_is_within_the_configured_bounds(make_app):
    client = worker_client(make_app(ANALYSER_MIN_LATENCY=0.1, ANALYSER_MAX_LATENCY=0.2))
    started = time.monotonic()
    assert client.post("/api/v1/analyse", json={"text": "ok"}).status_code == 200
    assert 0.1 <= time.monotonic() - started < 1.0


def test_slow_requests_do_not_wait_for_each_other(make_app):
    app = make_app(ANALYSER_MIN_LATENCY=0.3, ANALYSER_MAX_LATENCY=0.3)

    def post(_):
        return worker_client(app).post("/api/v1/analyse", json={"text": "ok"}).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(post, range(8))) == [200] * 8
    assert time.monotonic() - started < 1.5


def test_health_needs_no_token(app):
    response = app.test_client().get("/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_openapi_documents_analyse_and_its_bearer_token(app):
    spec = client_for(app, token_for(Role.CLINICIAN)).get("/openapi.json").json
    operation = spec["paths"]["/api/v1/analyse"]["post"]
    assert {"200", "401", "403", "422", "503"} <= set(operation["responses"])
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["security"] == [{"bearerAuth": []}]
    assert "security" not in operation
    # The probe needs none.
    assert spec["paths"]["/health"]["get"]["security"] == []
    assert spec["components"]["schemas"]["Text"]["required"] == ["text"]


def test_api_prefix_is_a_setting(make_app):
    client = worker_client(make_app(API_PREFIX="/analyser"))
    assert client.post("/analyser/analyse", json={"text": "ok"}).status_code == 200


def test_defaults_are_the_reference_behaviour(monkeypatch):
    for name in ("ANALYSER_MIN_LATENCY", "ANALYSER_MAX_LATENCY", "ANALYSER_FAILURE_RATE"):
        monkeypatch.delenv(name, raising=False)
    config = create_app().config
    assert (config["ANALYSER_MIN_LATENCY"], config["ANALYSER_MAX_LATENCY"]) == (1.0, 3.0)
    assert config["ANALYSER_FAILURE_RATE"] == 0.0
    assert config["API_PREFIX"] == "/api/v1"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ANALYSER_MIN_LATENCY", "abc"),
        ("ANALYSER_MIN_LATENCY", "-1"),
        ("ANALYSER_MAX_LATENCY", "nan"),
        ("ANALYSER_MAX_LATENCY", "1000"),
        ("ANALYSER_FAILURE_RATE", "1.5"),
        ("ANALYSER_FAILURE_RATE", "-0.1"),
        ("API_PREFIX", "api"),
    ],
)
def test_bad_setting_stops_the_app_naming_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"^{variable}: "):
        create_app()


def test_min_latency_above_max_is_refused(monkeypatch):
    monkeypatch.setenv("ANALYSER_MIN_LATENCY", "5")
    monkeypatch.setenv("ANALYSER_MAX_LATENCY", "2")
    with pytest.raises(ConfigError, match="^ANALYSER_MIN_LATENCY: .*ANALYSER_MAX_LATENCY"):
        create_app()


def test_bad_setting_on_the_command_line_is_one_clear_line():
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "analyser_app"],
        env={**os.environ, "ANALYSER_MIN_LATENCY": "soon"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1]
        == "configuration error: ANALYSER_MIN_LATENCY: expected a number, got 'soon'"
    )
