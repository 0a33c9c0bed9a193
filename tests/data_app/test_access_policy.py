"""Who may call each route of the consumer: one table, checked with real requests.

data_app checks tokens by their signature alone. A route the table does not name fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from data_app import create_app
from shared.auth.policy import undeclared_routes
from shared.auth.roles import Scope
from shared.db import db
from tests.access import (
    ADMIN,
    EVERYONE,
    Allowed,
    allowed,
    integration,
    mismatches,
    routes,
    signed_tokens,
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


def test_every_route_declares_its_access(app: Flask) -> None:
    assert list(undeclared_routes(app)) == []


def test_the_table_names_every_route(app: Flask) -> None:
    in_app = routes(app)
    assert in_app - set(POLICY) == set(), "routes without a policy in POLICY"
    assert set(POLICY) - in_app == set(), "POLICY names routes the app does not have"


@pytest.mark.parametrize("route", sorted(POLICY), ids=lambda route: " ".join(route))
def test_route_answers_only_whom_the_policy_allows(app: Flask, route: tuple[str, str]) -> None:
    endpoint, method = route
    assert mismatches(app, signed_tokens(), endpoint, method, POLICY[route]) == []
