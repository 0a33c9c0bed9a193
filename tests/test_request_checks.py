"""Hostile request bodies get a 4xx with the shared error body from every app, never a 500:
JSON nested 100,000 deep, JSON that is not plain JSON, text no database can store, bodies
over the app's MAX_CONTENT_LENGTH (chunked ones too) and login forms with too many parts.

Each app is built once for the module (in-process, over test clients); the JSON routes are
called signed in where they need it, so each request reaches its parser.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from werkzeug.test import EnvironBuilder, TestResponse
from werkzeug.wrappers import Request

import analyser_app
import data_app
import monitor_app
import patient_app
from devserver.redis_credentials import RedisAccess
from shared.auth.roles import Role
from shared.lifecycle import stop_background
from shared.request_checks import MAX_JSON_DEPTH, UNSTORABLE_MESSAGE
from tests.auth import bearer, token_for

ERROR_KEYS = {"code", "status", "message", "errors"}
PATIENT = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
DEEP = 100_000

# Each app's JSON route: (method, path). patient_app's needs an admin's token.
JSON_ROUTES: dict[str, tuple[str, str]] = {
    "monitor_app": ("POST", "/api/v1/auth/token"),
    "analyser_app": ("POST", "/api/v1/analyse"),
    "patient_app": ("PUT", f"/api/v1/patients/{PATIENT}/scenario"),
}
# The text field of each JSON route, and a valid value for it.
TEXT_FIELDS: dict[str, tuple[str, str]] = {
    "monitor_app": ("username", "nobody@vigil.test"),
    "analyser_app": ("text", "SpO2 84%"),
    "patient_app": ("scenario", "sepsis"),
}
BODY_LIMITS = {
    "monitor_app": 1024 * 1024,
    "analyser_app": 256 * 1024,
    "patient_app": 16 * 1024,
    "data_app": 16 * 1024,
}

HOSTILE_JSON: dict[str, bytes] = {
    "arrays 100,000 deep": b"[" * DEEP + b"]" * DEEP,
    "objects 100,000 deep": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "one level too deep": b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
    "a duplicated key": b'{"text": "a", "text": "b"}',
    "NaN": b'{"text": NaN}',
    "Infinity": b'{"text": -Infinity}',
    "1e999": b'{"text": 1e999}',
    "an integer of 5,000 digits": b'{"text": ' + b"9" * 5000 + b"}",
    "Latin-1": '{"text": "Müller"}'.encode("latin-1"),
    # Linear to scan, not quadratic: each quote starts a string that runs to the end.
    "30,000 escaped quotes, unterminated": b'{"text": "' + b'\\"' * 30_000,
}


@pytest.fixture(scope="module")
def apps(
    tmp_path_factory: pytest.TempPathFactory, redis_users: RedisAccess
) -> Iterator[dict[str, Flask]]:
    """One app of each kind, none serving (no broker or migration needed: every request
    here is refused before a view, or fails in it, without touching either)."""
    database = f"sqlite:///{tmp_path_factory.mktemp('request-checks') / 'vigil.db'}"
    common = {
        "TESTING": True,
        **redis_users.settings(),
        "REDIS_NAMESPACE": f"test-{uuid.uuid4().hex[:10]}",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
    }
    built = {
        "monitor_app": monitor_app.create_app(
            {**common, "DATABASE_URL": database, "RATELIMIT_ENABLED": False}
        ),
        "analyser_app": analyser_app.create_app(
            {**common, "ANALYSER_MIN_LATENCY": 0.0, "ANALYSER_MAX_LATENCY": 0.0}
        ),
        "patient_app": patient_app.create_app({**common, "PATIENT_UUID": str(PATIENT)}),
        "data_app": data_app.create_app({**common, "DATABASE_URL": database}),
    }
    yield built
    for app in built.values():
        stop_background(app)


def send_json(app: Flask, name: str, body: bytes) -> TestResponse:
    method, path = JSON_ROUTES[name]
    return app.test_client().open(
        path,
        method=method,
        data=body,
        content_type="application/json",
        headers=bearer(token_for(Role.ADMIN)),
    )


def assert_error(response: TestResponse, code: int) -> None:
    assert response.status_code == code, (response.status_code, response.get_data()[:300])
    assert set(response.json) == ERROR_KEYS
    assert response.json["code"] == code


@pytest.mark.parametrize("body", HOSTILE_JSON)
@pytest.mark.parametrize("name", JSON_ROUTES)
def test_hostile_json_is_400(apps: dict[str, Flask], name: str, body: str) -> None:
    response = send_json(apps[name], name, HOSTILE_JSON[body])
    # The deepest bodies are over analyser_app's and patient_app's size limit before they are
    # too deep; either way, a refusal.
    assert response.status_code in (400, 413), response.status_code
    assert_error(response, response.status_code)
    if response.status_code == 400:
        assert response.json["errors"] == {"json": ["Invalid JSON body."]}
        assert response.json["message"].startswith("Invalid JSON body: "), response.json


@pytest.mark.parametrize("name", JSON_ROUTES)
def test_json_as_deep_as_allowed_gets_past_the_check(apps: dict[str, Flask], name: str) -> None:
    body = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    # A list is not the object the route takes: the schema refuses it, not the check.
    assert_error(send_json(apps[name], name, body), 422)


def test_brackets_in_strings_do_not_count(apps: dict[str, Flask]) -> None:
    # Strings are skipped, escaped quotes and all: this text is one level deep.
    text = '[{\\"' * 1000 + "x"
    response = send_json(apps["analyser_app"], "analyser_app", f'{{"text": "{text}"}}'.encode())
    assert response.status_code == 200, response.json


@pytest.mark.parametrize("escape", [r"\u0000", r"\ud800", r"\udfff"])
@pytest.mark.parametrize("name", JSON_ROUTES)
def test_unstorable_text_is_422(apps: dict[str, Flask], name: str, escape: str) -> None:
    field, value = TEXT_FIELDS[name]
    body = f'{{"{field}": "{value}{escape}", "password": "x"}}'.encode()
    if name != "monitor_app":
        body = f'{{"{field}": "{value}{escape}"}}'.encode()
    response = send_json(apps[name], name, body)
    assert_error(response, 422)
    assert response.json["errors"] == {"json": {field: [UNSTORABLE_MESSAGE]}}


@pytest.mark.parametrize("name", BODY_LIMITS)
def test_body_over_the_limit_is_413(apps: dict[str, Flask], name: str) -> None:
    app = apps[name]
    assert app.config["MAX_CONTENT_LENGTH"] == BODY_LIMITS[name]
    body = b'{"text": "' + b"x" * BODY_LIMITS[name] + b'"}'
    # Any route, any content type: refused before anything reads it, even a GET's.
    method, path = JSON_ROUTES.get(name, ("GET", "/health"))
    response = app.test_client().open(path, method=method, data=body, content_type="text/plain")
    assert_error(response, 413)


@pytest.mark.parametrize("name", JSON_ROUTES)
def test_chunked_body_over_the_limit_is_413(apps: dict[str, Flask], name: str) -> None:
    app = apps[name]
    body = b'{"text": "' + b"x" * BODY_LIMITS[name] + b'"}'
    method, path = JSON_ROUTES[name]
    # No Content-Length: the server says the stream ends by itself (gunicorn, for chunked
    # bodies), and Werkzeug stops reading at the limit.
    environ = EnvironBuilder(
        path=path,
        method=method,
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers=bearer(token_for(Role.ADMIN)),
    ).get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    response = app.test_client().open(Request(environ))
    assert_error(response, 413)


@pytest.mark.parametrize("name", JSON_ROUTES)
def test_chunked_body_under_the_limit_is_read_whole(apps: dict[str, Flask], name: str) -> None:
    field, value = TEXT_FIELDS[name]
    body = f'{{"{field}": "{value}", "{field}": "twice"}}'.encode()
    environ = EnvironBuilder(
        path=JSON_ROUTES[name][1],
        method=JSON_ROUTES[name][0],
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers=bearer(token_for(Role.ADMIN)),
    ).get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    # The duplicated key is found: the whole body was read and checked.
    assert_error(apps[name].test_client().open(Request(environ)), 400)


MULTIPART, URLENCODED = "multipart/form-data", "application/x-www-form-urlencoded"
# Werkzeug counts the parts of multipart forms only; a url-encoded one is bounded by its size.
FORMS: dict[str, tuple[str, Callable[[], dict[str, str]]]] = {
    "multipart, too many parts": (MULTIPART, lambda: {f"field{i}": "x" for i in range(100)}),
    "multipart, a field too large": (MULTIPART, lambda: {"email": "x" * 32 * 1024}),
    "url-encoded, too large": (URLENCODED, lambda: {"email": "x" * 32 * 1024}),
}


@pytest.mark.parametrize("form", FORMS)
def test_login_form_over_the_limits_is_413(apps: dict[str, Flask], form: str) -> None:
    content_type, fields = FORMS[form]
    response = (
        apps["monitor_app"].test_client().post("/login", data=fields(), content_type=content_type)
    )
    assert_error(response, 413)
