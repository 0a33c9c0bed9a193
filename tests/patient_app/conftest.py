from collections.abc import Iterator

import pytest
from flask import Flask

from patient_app import create_app
from shared.lifecycle import background_service, stop_background


@pytest.fixture
def app(redis_settings: dict[str, str]) -> Iterator[Flask]:
    """A patient_app whose background services are not started (no broker needed); tokens
    are checked against the test's Redis namespace."""
    app = create_app(
        {
            "TESTING": True,
            **redis_settings,
            "PATIENT_NAME": "Ivan Petrov",
            "PATIENT_SEED": 7,
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        }
    )
    yield app
    stop_background(app)


@pytest.fixture
def metrics_service(app):
    return background_service(app, "monitoring")
