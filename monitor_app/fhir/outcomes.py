"""Errors of the FHIR API, answered as OperationOutcome resources.

Registered on the /fhir blueprint alone, so the JSON API keeps its own error body; the access
check's 401 and 403 and the rate limit's 429 are raised for a /fhir route too, and come here.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"

# http://hl7.org/fhir/R4/valueset-issue-type.html, by HTTP status.
ISSUE_TYPES: dict[int, str] = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    410: "deleted",
    413: "too-long",
    414: "too-long",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
    503: "transient",
}


class Refused(BadRequest):
    """A 400 whose OperationOutcome says which kind of problem it is (invalid, too-costly,
    not-supported…)."""

    def __init__(self, description: str, issue_type: str = "invalid") -> None:
        super().__init__(description)
        self.issue_type = issue_type


def operation_outcome(issue_type: str, diagnostics: str) -> dict[str, Any]:
    """An OperationOutcome with one error."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": issue_type, "diagnostics": diagnostics}],
    }


def fhir_response(resource: dict[str, Any], status: int = 200) -> Response:
    """A resource as FHIR JSON."""
    response = current_app.json.response(resource)
    response.status_code = status
    response.content_type = f"{FHIR_JSON}; charset=utf-8"
    return response


def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    issue_type = getattr(exc, "issue_type", None) or ISSUE_TYPES.get(code, "exception")
    # flask-smorest's abort() (the shared request checks use it) puts its message in `data`.
    data = getattr(exc, "data", None) or {}
    diagnostics = data.get("message") or exc.description or exc.name
    response = fhir_response(operation_outcome(issue_type, str(diagnostics)), code)
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _unexpected_error(exc: Exception) -> Response:
    log.exception("unhandled error")
    return _http_error(InternalServerError("An unexpected error occurred."))


def register_outcomes(bp: Blueprint) -> None:
    """Make every error of the blueprint's routes an OperationOutcome."""
    bp.register_error_handler(HTTPException, _http_error)
    bp.register_error_handler(Exception, _unexpected_error)
