"""The notifications API: /api/v1/notifications, its cache, queue, events and rate limit."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, update

from monitor_app import create_app
from shared.broker import free_port
from shared.db import db, migrate
from shared.models import Notification

URL = "/api/v1/notifications"
ALICE = "0b6f4a8e-3c1d-4f0e-9a57-7d2c61b0a001"
BOB = "0b6f4a8e-3c1d-4f0e-9a57-7d2c61b0a002"
STATUS_FIELDS = {"id", "processing_status", "category", "confidence", "keywords",
                 "failure_reason", "attempts", "status_changed_at", "analysed_at"}


def post(client: FlaskClient, **fields: Any) -> dict[str, Any]:
    """Create a notification through the API; returns its JSON."""
    body = {"user_id": ALICE, "title": "SpO2 low", "text": "SpO2 88% on room air.", **fields}
    response = client.post(URL, json=body)
    assert response.status_code == 201, response.json
    return response.json


def change(app: Flask, notification_id: str, **values: Any) -> None:
    """Change a notification behind the API's back, as the analysis worker would."""
    with db.sessionmaker(app).begin() as session:
        session.execute(update(Notification)
                        .where(Notification.id == uuid.UUID(notification_id)).values(**values))


def ids(response: Any) -> list[str]:
    return [notification["id"] for notification in response.json]


def pagination(response: Any) -> dict[str, Any]:
    return json.loads(response.headers["X-Pagination"])


@contextmanager
def recorded_statements(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app's engine runs inside the block."""
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    engine = db.engine(app)
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def redis_client(redis_settings: dict[str, str]) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_settings["REDIS_URL"])
    yield client
    client.close()


@pytest.fixture
def make_app(database_url: str, redis_settings: dict[str, str]) -> Iterator[Callable[..., Flask]]:
    """Another monitor app over the test's database, with settings overridden."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        app = create_app({"DATABASE_URL": database_url, "TESTING": True, **redis_settings,
                          **overrides})
        migrate(db.engine(app))
        apps.append(app)
        return app

    yield make
    for app in apps:
        db.engine(app).dispose()


# -- create ------------------------------------------------------------------------------------

def test_create(client: FlaskClient) -> None:
    response = client.post(URL, json={"user_id": ALICE, "title": "  SpO2 low ",
                                      "text": "SpO2 88% on room air."})

    assert response.status_code == 201
    body = response.json
    assert response.headers["Location"] == f"{URL}/{body['id']}"
    uuid.UUID(body["id"])
    assert body == {
        "id": body["id"], "user_id": ALICE, "patient_uuid": None, "title": "SpO2 low",
        "text": "SpO2 88% on room air.", "created_at": body["created_at"], "read_at": None,
        "category": None, "confidence": None, "keywords": None, "processing_status": "pending",
        "failure_reason": None, "attempts": 0, "analysed_at": None}
    assert datetime.fromisoformat(body["created_at"]).utcoffset() is not None

    shown = client.get(response.headers["Location"])
    assert (shown.status_code, shown.json) == (200, body)
