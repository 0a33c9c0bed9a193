"""Who may call each route of the consumer: one table, checked with real requests.

data_app checks tokens by their signature alone. A route the table does not name fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from data_app import create_app
from shared.auth.roles import Scope
from shared.db import db
from tests.access import (
    ADMIN,
    EVERYONE,
    Allowed,
    allowed,
    integration,
    signed_token_policy_tests,
)

POLICY: dict[tuple[str, str], Allowed] = {
    ("health.health", "GET"): allowed(EVERYONE),
    ("prometheus_metrics", "GET"): allowed(ADMIN, integration(Scope.METRICS_READ)),
}


@pytest.fixture
def app(sqlite_url: str, redis_settings: dict[str, str]) -> Iterator[Flask]:
    """A data_app whose consumer is not started: access needs neither broker nor database."""
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": sqlite_url,
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
            **redis_settings,
        }
    )
    yield app
    db.engine(app).dispose()


(
    test_every_route_declares_its_access_and_is_in_the_table,
    test_route_answers_only_whom_the_policy_allows,
) = signed_token_policy_tests(POLICY)
