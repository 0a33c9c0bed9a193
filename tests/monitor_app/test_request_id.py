"""Every response carries the request id that its log lines carry."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shared.logging import request_id_var
from tests.helpers import on_sqlite_only


def test_client_request_id_is_echoed(client: FlaskClient) -> None:
    response = client.get("/health", headers={"X-Request-ID": "ward-7.bed-3:42"})
    assert response.headers["X-Request-ID"] == "ward-7.bed-3:42"


@pytest.mark.parametrize("header", [None, "", "x" * 129, "has space", "new\u00e9line"])
@on_sqlite_only
def test_missing_or_unsafe_request_id_is_replaced(client: FlaskClient, header: str | None) -> None:
    headers = {} if header is None else {"X-Request-ID": header}
    response = client.get("/health", headers=headers)
    made = response.headers["X-Request-ID"]
    assert made and made != header
    assert len(made) == 32


def test_errors_carry_the_request_id_too(client: FlaskClient) -> None:
    response = client.get("/api/v1/patients/not-a-uuid", headers={"X-Request-ID": "abc"})
    assert response.status_code == 422
    assert response.headers["X-Request-ID"] == "abc"


def test_request_id_is_in_context_only_during_the_request(app: Flask, client: FlaskClient) -> None:
    seen: list[str | None] = []

    @app.after_request
    def remember(response):
        seen.append(request_id_var.get())
        return response

    client.get("/health", headers={"X-Request-ID": "r-1"})
    assert seen == ["r-1"]
    assert request_id_var.get() is None
