"""One JSON error body for every app: `{code, status, message, errors}`."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)


def error_body(
    code: int, message: str | None = None, errors: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The error document every Vigil endpoint returns."""
    status = HTTPStatus(code)
    return {
        "code": code,
        "status": status.phrase,
        "message": message or status.description or status.phrase,
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
