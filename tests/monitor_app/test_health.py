"""GET /health."""

from __future__ import annotations

from flask.testing import FlaskClient

from monitor_app import create_app
from shared.db import db


def test_healthy(client: FlaskClient) -> None:
    response = client.get("/health")
    assert (response.status_code, response.json) == (200, {"status": "ok", "database": "ok"})


def test_degraded_before_the_schema_exists(database_url: str) -> None:
    app = create_app({"DATABASE_URL": database_url, "TESTING": True})
    try:
        response = app.test_client().get("/health")
    finally:
        db.engine(app).dispose()

    assert response.status_code == 503
    assert response.json["status"] == "degraded"
    assert "patients" in response.json["database"]


def test_degraded_when_the_database_is_unreachable() -> None:
    app = create_app({"DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/nowhere",
                      "TESTING": True})
    try:
        response = app.test_client().get("/health")
    finally:
        db.engine(app).dispose()

    assert response.status_code == 503
    assert response.json["status"] == "degraded"
    assert response.json["database"] not in ("", "ok")
