"""GET /health."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from devserver.ports import free_port
from monitor_app import create_app
from shared.auth.roles import Role
from shared.db import db, migrate
from tests.auth import client_for, create_account


def test_healthy(client: FlaskClient) -> None:
    response = client.get("/health")
    assert (response.status_code, response.json) == (
        200,
        {
            "status": "ok",
            "database": "ok",
            "redis": "ok",
            # The event hub runs only under a server (started after the fork).
            "live": {"connected": False, "clients": 0},
        },
    )


def test_without_redis_the_api_is_degraded_but_serves(database_url: str) -> None:
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "TESTING": True,
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        }
    )
    migrate(db.engine(app))
    try:
        admin = create_account(db.sessionmaker(app), Role.ADMIN)
        response = client_for(app, admin.token).get("/health")
    finally:
        db.engine(app).dispose()

    assert response.status_code == 200
    assert response.json["status"] == "degraded"
    assert response.json["database"] == "ok"
    assert "connect" in response.json["redis"].lower()


@pytest.mark.parametrize(
    ("url_of", "reason"),
    [
        # A database that answers but has no tables yet: the report names the missing table.
        (lambda empty_database_url: empty_database_url, "patients"),
        (lambda _url: "postgresql+psycopg://nobody@127.0.0.1:1/nowhere", ""),
    ],
    ids=["schema-missing", "unreachable"],
)
def test_degraded(
    empty_database_url: str, url_of, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app({"DATABASE_URL": url_of(empty_database_url), "TESTING": True})
    try:
        response = app.test_client().get("/health")
    finally:
        db.engine(app).dispose()

    # Without the database nobody can be proven an admin: the reason goes to the log.
    assert (response.status_code, response.json) == (503, {"status": "degraded"})
    failures = [r for r in caplog.records if r.getMessage() == "database health check failed"]
    assert failures and reason in str(failures[0].exc_info[1])
