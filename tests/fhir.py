"""Reading the FHIR API's answers in tests: every resource is checked against the R4B models
of `fhir.resources`, and errors are OperationOutcomes."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient
from flask import Flask
from werkzeug.test import TestResponse

from monitor_app.auth import services
from shared.auth.roles import Scope
from shared.db import db
from shared.identity import User

MODELS = {
    model.__name__: model
    for model in (Bundle, CapabilityStatement, Observation, OperationOutcome, Patient)
}
LOINC = "http://loinc.org"
VITAL_SIGNS = "http://terminology.hl7.org/CodeSystem/observation-category"


def validated(resource: dict[str, Any]) -> dict[str, Any]:
    """`resource`, once its model has accepted it (and each entry's, for a Bundle)."""
    MODELS[resource["resourceType"]].model_validate(resource)
    for entry in resource.get("entry", ()):
        validated(entry["resource"])
    return resource


def fhir_json(response: TestResponse, status: int = 200) -> dict[str, Any]:
    """The resource an answer holds, checked: its status, its content type, its model."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/fhir+json"
    return validated(response.get_json(force=True))


def outcome(response: TestResponse, status: int, code: str | None = None) -> str:
    """The diagnostics of an OperationOutcome answering with `status` (and issue `code`)."""
    body = fhir_json(response, status)
    assert body["resourceType"] == "OperationOutcome"
    (issue,) = body["issue"]
    assert issue["severity"] == "error"
    if code is not None:
        assert issue["code"] == code, issue
    return issue["diagnostics"]


def entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    for entry in bundle.get("entry", ()):
        resource = entry["resource"]
        assert entry["search"] == {"mode": "match"}
        assert entry["fullUrl"].endswith(f"/fhir/{resource['resourceType']}/{resource['id']}")
    return [entry["resource"] for entry in bundle.get("entry", ())]


def link(bundle: dict[str, Any], relation: str) -> str | None:
    found = [item["url"] for item in bundle["link"] if item["relation"] == relation]
    return found[0] if found else None


def codes(resource: dict[str, Any]) -> set[tuple[str, str]]:
    return {(coding["system"], coding["code"]) for coding in resource["code"]["coding"]}


def api_token(app: Flask, user_id: object, *scopes: Scope) -> str:
    """A new API token of the (integration) account `user_id`, holding `scopes`."""
    signer = app.extensions["vigil.token_signer"]
    with db.sessionmaker(app).begin() as session:
        user = session.get(User, user_id)
        _row, token = services.create_api_token(session, signer, user, "feed", scopes)
    return token
