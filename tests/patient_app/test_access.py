"""Who may read the simulated patients and switch their scenarios, and what is refused."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shared.auth.roles import Role, Scope
from tests.auth import token_for
from tests.bearer import (
    client_with,
    expired_token,
    foreign_key_token,
    tampered_token,
    unknown_role_token,
    unsigned_token,
)

READS = ("/api/v1/patient", "/api/v1/patients", "/api/v1/patients/{pid}")

# Tokens that must not get past the signature check, whatever they claim.
BAD_TOKENS = {
    "tampered": lambda: tampered_token(token_for(Role.VIEWER), role=Role.ADMIN.value),
    "tampered-scopes": lambda: tampered_token(
        token_for(Role.INTEGRATION, [Scope.PATIENTS_READ]), scope=Scope.SCENARIO_WRITE.value
    ),
    "expired": expired_token,
    "foreign-key": foreign_key_token,
    "unsigned": unsigned_token,
    "unknown-role": unknown_role_token,
    "garbage": lambda: "not.a.token",
}


def switch(client: FlaskClient, pid: object, scenario: str = "sepsis"):
    return client.put(f"/api/v1/patients/{pid}/scenario", json={"scenario": scenario})


def assert_refused(response, code: int) -> None:
    assert response.status_code == code
    assert set(response.json) == {"code", "status", "message", "errors"}
    assert response.json["code"] == code
    if code == 401:
        assert response.headers["WWW-Authenticate"].lower().startswith("bearer")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: token_for(Role.ADMIN), id="admin"),
        pytest.param(lambda: token_for(Role.INTEGRATION, [Scope.SCENARIO_WRITE]), id="scoped"),
    ],
)
def test_admins_and_scenario_writers_switch_scenarios(app: Flask, metrics_service, token) -> None:
    patient = metrics_service.patient()
    response = switch(client_with(app, token()), patient.uuid)
    assert response.status_code == 200
    assert patient.scenario == "sepsis"


def test_anonymous_scenario_switch_is_401_and_changes_nothing(
    anonymous: FlaskClient, metrics_service
) -> None:
    patient = metrics_service.patient()
    assert_refused(switch(anonymous, patient.uuid), 401)
    assert patient.scenario == "normal"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: token_for(Role.CLINICIAN), id="clinician"),
        pytest.param(lambda: token_for(Role.VIEWER), id="viewer"),
        pytest.param(lambda: token_for(Role.INTEGRATION, [Scope.PATIENTS_READ]), id="reader"),
        pytest.param(
            lambda: token_for(Role.INTEGRATION, [Scope.METRICS_READ, Scope.NOTIFICATIONS_WRITE]),
            id="other-scopes",
        ),
        pytest.param(lambda: token_for(Role.INTEGRATION), id="no-scopes"),
    ],
)
def test_roles_and_scopes_without_scenario_write_get_403(app: Flask, metrics_service, token):
    patient = metrics_service.patient()
    assert_refused(switch(client_with(app, token()), patient.uuid), 403)
    assert patient.scenario == "normal"


@pytest.mark.parametrize("make_token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_a_token_that_does_not_verify_is_401_for_the_switch(
    app: Flask, metrics_service, make_token
) -> None:
    patient = metrics_service.patient()
    assert_refused(switch(client_with(app, make_token()), patient.uuid), 401)
    assert patient.scenario == "normal"


@pytest.mark.parametrize(
    "authorization",
    ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer ", "Token {token}", "{token}"],
)
def test_credentials_not_sent_as_a_bearer_token_count_as_none(
    app: Flask, metrics_service, authorization: str
) -> None:
    patient = metrics_service.patient()
    header = authorization.format(token=token_for(Role.ADMIN))
    response = app.test_client().put(
        f"/api/v1/patients/{patient.uuid}/scenario",
        json={"scenario": "sepsis"},
        headers={"Authorization": header},
    )
    assert_refused(response, 401)
    assert patient.scenario == "normal"


def test_the_switch_checks_access_before_the_body(anonymous: FlaskClient, metrics_service):
    # An anonymous caller learns nothing about what a valid request would look like.
    pid = metrics_service.patient().uuid
    assert_refused(switch(anonymous, pid, scenario="zombie"), 401)


@pytest.mark.parametrize("path", READS)
def test_anonymous_reads_of_patient_data_are_401(
    anonymous: FlaskClient, metrics_service, path: str
) -> None:
    response = anonymous.get(path.format(pid=metrics_service.patient().uuid))
    assert_refused(response, 401)
    assert "Ivan Petrov" not in response.text


@pytest.mark.parametrize("path", READS)
@pytest.mark.parametrize("make_token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_reads_with_a_token_that_does_not_verify_are_401(
    app: Flask, metrics_service, path: str, make_token
) -> None:
    client = client_with(app, make_token())
    assert_refused(client.get(path.format(pid=metrics_service.patient().uuid)), 401)


@pytest.mark.parametrize("path", READS)
@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: token_for(Role.CLINICIAN), id="clinician"),
        pytest.param(lambda: token_for(Role.VIEWER), id="viewer"),
        pytest.param(lambda: token_for(Role.INTEGRATION, [Scope.PATIENTS_READ]), id="reader"),
    ],
)
def test_people_and_patient_readers_read_patient_data(
    app: Flask, metrics_service, path: str, token
) -> None:
    response = client_with(app, token()).get(path.format(pid=metrics_service.patient().uuid))
    assert response.status_code == 200
    assert "Ivan Petrov" in response.text


@pytest.mark.parametrize("path", READS)
def test_an_integration_without_patients_read_may_not_read_them(
    app: Flask, metrics_service, path: str
) -> None:
    client = client_with(app, token_for(Role.INTEGRATION, [Scope.SCENARIO_WRITE]))
    assert_refused(client.get(path.format(pid=metrics_service.patient().uuid)), 403)


def test_metrics_need_an_admin_or_metrics_read(app: Flask, anonymous: FlaskClient) -> None:
    assert_refused(anonymous.get("/metrics"), 401)
    assert_refused(client_with(app, token_for(Role.CLINICIAN)).get("/metrics"), 403)
    assert_refused(
        client_with(app, token_for(Role.INTEGRATION, [Scope.PATIENTS_READ])).get("/metrics"), 403
    )
    assert_refused(client_with(app, foreign_key_token()).get("/metrics"), 401)
    scraper = client_with(app, token_for(Role.INTEGRATION, [Scope.METRICS_READ]))
    assert scraper.get("/metrics").status_code == 200


def test_health_is_public(anonymous: FlaskClient) -> None:
    # No broker here, so it is degraded; what matters is that nobody had to sign in.
    # (Why, to admins only: test_health_disclosure.)
    response = anonymous.get("/health")
    assert (response.status_code, response.json) == (503, {"status": "degraded"})


def test_the_openapi_document_needs_sign_in(anonymous: FlaskClient, client: FlaskClient) -> None:
    assert_refused(anonymous.get("/openapi.json"), 401)
    assert client.get("/openapi.json").status_code == 200
