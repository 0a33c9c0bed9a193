"""Who may call each route of the analyser: one table, checked with real requests.

analyser_app checks tokens by their signature and the revocation sets on Redis, like
patient_app and data_app. A route the table does not name fails the test.
"""

from __future__ import annotations

from shared.auth.roles import Scope
from tests.access import (
    ADMIN,
    EVERYONE,
    PEOPLE,
    Allowed,
    allowed,
    integration,
    signed_token_policy_tests,
)

POLICY: dict[tuple[str, str], Allowed] = {
    ("health.Health", "GET"): allowed(EVERYONE),
    ("prometheus_metrics", "GET"): allowed(ADMIN, integration(Scope.METRICS_READ)),
    ("api-docs.openapi_json", "GET"): allowed(PEOPLE),
    # Notification texts describe patients: the worker's right, and an admin's.
    ("analysis.Analyse", "POST"): allowed(ADMIN, integration(Scope.ANALYSIS_WRITE)),
}


(
    test_every_route_declares_its_access_and_is_in_the_table,
    test_route_answers_only_whom_the_policy_allows,
) = signed_token_policy_tests(POLICY)
