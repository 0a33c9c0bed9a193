from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from analyser_app import create_app
from shared.auth.roles import Role, Scope
from tests.auth import client_for, token_for

INSTANT = {"TESTING": True, "ANALYSER_MIN_LATENCY": 0.0, "ANALYSER_MAX_LATENCY": 0.0}


def worker_token() -> str:
    """What the worker sends: an integration's API token holding analysis:write."""
    return token_for(Role.INTEGRATION, [Scope.ANALYSIS_WRITE])


def worker_client(app: Flask) -> FlaskClient:
    """A test client of `app` that sends the worker's kind of token with every request."""
    return client_for(app, worker_token())


@pytest.fixture
def make_app(redis_settings: dict[str, str]) -> Callable[..., Flask]:
    """An analyser_app that answers at once, with any setting overridden; tokens are checked
    against the test's Redis namespace."""

    def make(**overrides: Any) -> Flask:
        return create_app({**INSTANT, **redis_settings, **overrides})

    return make


@pytest.fixture
def app(make_app) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """The test client, sending the worker's kind of token."""
    return worker_client(app)
