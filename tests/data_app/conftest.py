from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from data_app import create_app
from shared.auth.roles import Role
from shared.db import db, migrate
from shared.lifecycle import background_service
from tests.auth import token_for
from tests.bearer import client_with

FAST_GROUP = {"KAFKA_SESSION_TIMEOUT_MS": 2000, "CONSUMER_POLL_TIMEOUT": 0.2}


@pytest.fixture
def make_data_app(
    kafka_bootstrap, topic_names, database_url, redis_settings
) -> Iterator[Callable[..., Flask]]:
    """Build data_apps sharing one broker, topics, consumer group and database."""
    apps: list[Flask] = []

    def make(**overrides) -> Flask:
        config = {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KAFKA_GROUP_ID": "data-test",
            "KAFKA_TOPIC_PARTITIONS": 3,
            **topic_names,
            **FAST_GROUP,
            **redis_settings,
            **overrides,
        }
        app = create_app(config)
        migrate(db.engine(app))
        apps.append(app)
        return app

    yield make
    for app in apps:
        background_service(app, "consumer").stop()
        db.engine(app).dispose()


@pytest.fixture
def data_app(make_data_app) -> Flask:
    return make_data_app()


@pytest.fixture
def app(data_app) -> Flask:
    """The app pytest-flask's `client` talks to."""
    return data_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """The test client, signed in as an admin (who may read `/metrics`)."""
    return client_with(app, token_for(Role.ADMIN))


@pytest.fixture
def anonymous(app: Flask) -> FlaskClient:
    return client_with(app, None)
