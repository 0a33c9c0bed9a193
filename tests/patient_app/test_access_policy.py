"""Who may call each route of the patient simulator: one table, checked with real requests.

patient_app checks tokens by their signature alone (it has no accounts), so the callers'
tokens name users no database knows. A route the table does not name fails the test.
"""

from __future__ import annotations

import uuid

import pytest
from flask import Flask

from shared.auth.roles import Role, Scope
from tests.access import (
    ADMIN,
    EVERYONE,
    PEOPLE,
    Allowed,
    allowed,
    integration,
    signed_token_policy_tests,
)
from tests.auth import TEST_TOKEN_LIFETIME, Account, bearer, signer
from tests.forgeries import FORGERIES, signed_claims

PATIENTS_READ = allowed(PEOPLE, integration(Scope.PATIENTS_READ))

POLICY: dict[tuple[str, str], Allowed] = {
    ("health.Health", "GET"): allowed(EVERYONE),
    ("prometheus_metrics", "GET"): allowed(ADMIN, integration(Scope.METRICS_READ)),
    ("api-docs.openapi_json", "GET"): allowed(PEOPLE),
    ("patients.ThisPatient", "GET"): PATIENTS_READ,
    ("patients.SimulatedPatients", "GET"): PATIENTS_READ,
    ("patients.SimulatedPatientById", "GET"): PATIENTS_READ,
    # Changing what a patient goes through is for admins and the tools given that right.
    ("patients.PatientScenario", "PUT"): allowed(ADMIN, integration(Scope.SCENARIO_WRITE)),
}


@pytest.fixture(autouse=True)
def no_broker_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """/health asks the broker, a second each time none answers: not what this is about."""
    monkeypatch.setattr("shared.producer_recovery.broker_reachable", lambda *_args: False)


(
    test_every_route_declares_its_access_and_is_in_the_table,
    test_route_answers_only_whom_the_policy_allows,
) = signed_token_policy_tests(POLICY)


# patient_app trusts a genuine token's role: one it does not know grants nothing.
PATIENT_APP_FORGERIES = {
    **FORGERIES,
    "unknown-role": lambda account: signed_claims(account, role="superuser"),
}


@pytest.mark.parametrize("forge", PATIENT_APP_FORGERIES.values(), ids=PATIENT_APP_FORGERIES.keys())
def test_forged_tokens_are_refused(app: Flask, forge) -> None:
    user_id = uuid.uuid4()
    token, _claims = signer().access_token(user_id, Role.ADMIN.value, TEST_TOKEN_LIFETIME)
    account = Account(user_id, "admin@vigil.test", Role.ADMIN, "", token)
    client = app.test_client()
    # The genuine token works, so the forgery alone is what is refused.
    assert client.get("/api/v1/patients", headers=bearer(token)).status_code == 200

    response = client.get("/api/v1/patients", headers=bearer(forge(account)))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert set(response.json) == {"code", "status", "message", "errors"}
