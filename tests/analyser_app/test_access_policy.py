"""Who may call each route of the analyser: one table, checked with real requests.

analyser_app checks tokens by their signature and the revocation sets on Redis, like
patient_app and data_app. A route the table does not name fails the test.
"""

from __future__ import annotations

import pytest
from flask import Flask

from shared.auth.roles import Scope
from tests.access import (
    ADMIN,
    EVERYONE,
    NO_COVERAGE_PROBLEMS,
    PEOPLE,
    Allowed,
    allowed,
    coverage_problems,
    integration,
    mismatches,
    signed_tokens,
)

POLICY: dict[tuple[str, str], Allowed] = {
    ("health.Health", "GET"): allowed(EVERYONE),
    ("prometheus_metrics", "GET"): allowed(ADMIN, integration(Scope.METRICS_READ)),
    ("api-docs.openapi_json", "GET"): allowed(PEOPLE),
    # Notification texts describe patients: the worker's right, and an admin's.
    ("analysis.Analyse", "POST"): allowed(ADMIN, integration(Scope.ANALYSIS_WRITE)),
}


def test_every_route_declares_its_access_and_is_in_the_table(app: Flask) -> None:
    assert coverage_problems(app, POLICY) == NO_COVERAGE_PROBLEMS


@pytest.mark.parametrize("route", sorted(POLICY), ids=lambda route: " ".join(route))
def test_route_answers_only_whom_the_policy_allows(app: Flask, route: tuple[str, str]) -> None:
    endpoint, method = route
    assert mismatches(app, signed_tokens(), endpoint, method, POLICY[route]) == []
