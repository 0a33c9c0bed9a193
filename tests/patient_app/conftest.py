from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from patient_app import create_app
from shared.auth.roles import Role
from shared.lifecycle import background_service, stop_background
from tests.auth import token_for
from tests.bearer import client_with


@pytest.fixture
def app(redis_settings: dict[str, str]) -> Iterator[Flask]:
    """A patient_app whose background services are not started (no broker needed); tokens
    are checked against the test's Redis namespace."""
    app = create_app(
        {
            "TESTING": True,
            **redis_settings,
            "PATIENT_NAME": "Ivan Petrov",
            "PATIENT_ID_SECRET": "0123456789abcdef" * 4,
            "PATIENT_SEED": 7,
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        }
    )
    yield app
    stop_background(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """The test client, signed in as an admin (who may also switch scenarios)."""
    return client_with(app, token_for(Role.ADMIN))


@pytest.fixture
def anonymous(app: Flask) -> FlaskClient:
    return client_with(app, None)


@pytest.fixture
def metrics_service(app):
    return background_service(app, "monitoring")
