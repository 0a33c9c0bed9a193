"""One JSON error body for every app: `{code, status, message, errors}`."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

# Python 3.13 gave these statuses RFC 9110's names ("Unprocessable Content"...); the bodies keep
# the names they have on 3.11 and 3.12, which are also those of Werkzeug's status line, so an
# answer reads the same whatever Python runs the app.
_EARLIER_NAMES: dict[int, tuple[str, str]] = {
    413: ("Request Entity Too Large", "Entity is too large"),
    414: ("Request-URI Too Long", "URI is too long"),
    416: ("Requested Range Not Satisfiable", "Cannot satisfy request range"),
    422: ("Unprocessable Entity", ""),
}

# The OpenAPI response flask-smorest documents for 422, named after Python's HTTPStatus:
# UNPROCESSABLE_ENTITY before 3.13, UNPROCESSABLE_CONTENT from 3.13 on.
UNPROCESSABLE = HTTPStatus(422).name


def error_body(
    code: int, message: str | None = None, errors: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The error document every Vigil endpoint returns."""
    status = HTTPStatus(code)
    phrase, description = _EARLIER_NAMES.get(code, (status.phrase, status.description))
    return {
        "code": code,
        "status": phrase,
        "message": message or description or phrase,
        "errors": errors or {},
    }


def _http_error(exc: HTTPException):
    # flask-smorest's abort() and webargs put details in `exc.data`.
    data = getattr(exc, "data", None) or {}
    errors = data.get("errors") or data.get("messages") or {}
    message = data.get("message") or exc.description
    code = exc.code or 500
    response = jsonify(error_body(code, message, errors))
    response.status_code = code
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _unexpected_error(exc: Exception):
    log.exception("unhandled error")
    return _http_error(InternalServerError("An unexpected error occurred."))


def register_error_handlers(app: Flask) -> None:
    """Make every HTTP error, expected or not, answer with the shared JSON body."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
