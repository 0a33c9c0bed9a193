"""Text no database can store is refused with 422, the same on SQLite and PostgreSQL, wherever
the monitor API takes text: JSON bodies, query strings, the login form and headers.

NUL: PostgreSQL refuses it (a 500 there), SQLite stores it. A lone surrogate (the JSON escape
"\\ud800") cannot be encoded for either database (a 500 on both). Both reach the API as JSON
escapes, which is how the test client sends them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from devserver.postgres import fresh_database
from devserver.redis_credentials import RedisAccess
from monitor_app import create_app
from shared.auth.roles import Role
from shared.db import db, migrate
from shared.identity import ApiToken
from shared.models import Notification
from shared.request_checks import UNSTORABLE_MESSAGE
from tests.auth import Account, client_for, create_account

ERROR_KEYS = {"code", "status", "message", "errors"}
UNSTORABLE = {"nul": "\x00", "surrogate": "\ud800"}
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')

Send = Callable[[FlaskClient, Account, str], TestResponse]


def _notification(field: str) -> Send:
    def send(client: FlaskClient, admin: Account, bad: str) -> TestResponse:
        body = {"user_id": str(admin.id), "title": "Rounds", "text": "At ten.", field: f"a{bad}"}
        return client.post("/api/v1/notifications", json=body)

    return send


def _sign_in(field: str) -> Send:
    def send(client: FlaskClient, admin: Account, bad: str) -> TestResponse:
        body = {"username": admin.email, "password": admin.password, field: f"a{bad}"}
        return client.post("/api/v1/auth/token", json=body)

    return send


def _api_token(field: str) -> Send:
    def send(client: FlaskClient, admin: Account, bad: str) -> TestResponse:
        body = {"email": admin.email, "name": "gateway", field: f"{bad}{admin.email}"}
        return client.post("/api/v1/auth/tokens", json=body)

    return send


def _audit_query(client: FlaskClient, _admin: Account, bad: str) -> TestResponse:
    return client.get("/api/v1/audit", query_string={"action": f"sign_in{bad}"})


def _login_form(client: FlaskClient, admin: Account, bad: str) -> TestResponse:
    page = client.get("/login")
    token = CSRF_FIELD.search(page.get_data(as_text=True))
    assert token, "the login form carries no CSRF token"
    form = {"email": f"{admin.email}{bad}", "password": admin.password, "csrf_token": token[1]}
    return client.post("/login", data=form)


def _user_agent(client: FlaskClient, _admin: Account, bad: str) -> TestResponse:
    # The patient list is an audited read: the record keeps the caller's User-Agent.
    return client.get("/api/v1/patients", headers={"User-Agent": f"probe{bad}"})


# (what is sent, where the error names it). Only JSON can carry a lone surrogate: Werkzeug keeps
# a query string's or a form's invalid UTF-8 percent-encoded, and WSGI headers are Latin-1.
CASES: dict[str, tuple[Send, tuple[str, str]]] = {
    "notification title": (_notification("title"), ("json", "title")),
    "notification text": (_notification("text"), ("json", "text")),
    "sign-in username": (_sign_in("username"), ("json", "username")),
    "sign-in password": (_sign_in("password"), ("json", "password")),
    "api token name": (_api_token("name"), ("json", "name")),
    "api token email": (_api_token("email"), ("json", "email")),
    "audit filter": (_audit_query, ("query", "action")),
    "login form": (_login_form, ("form", "email")),
    "user agent": (_user_agent, ("headers", "User-Agent")),
}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend_app(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_users: RedisAccess,
) -> Iterator[Flask]:
    """One monitor API per backend for the whole module: every case is refused before it
    writes, so they can share a database (and skip a migration each)."""
    if request.param == "sqlite":
        database: Any = nullcontext(f"sqlite:///{tmp_path_factory.mktemp('unstorable') / 'v.db'}")
    else:
        database = fresh_database(request.getfixturevalue("postgres_server"))
    with database as url:
        app = create_app(
            {
                "DATABASE_URL": url,
                "TESTING": True,
                **redis_users.settings(),
                "REDIS_NAMESPACE": f"test-{uuid.uuid4().hex[:10]}",
                "RATELIMIT_ENABLED": False,
            }
        )
        migrate(db.engine(app))
        yield app
        db.engine(app).dispose()


@pytest.fixture(scope="module")
def backend_admin(backend_app: Flask) -> Account:
    return create_account(db.sessionmaker(backend_app), Role.ADMIN)


@pytest.mark.parametrize("case", CASES)
def test_unstorable_text_is_422_on_every_backend(
    case: str, backend_app: Flask, backend_admin: Account
) -> None:
    send, (location, field) = CASES[case]
    for name, bad in UNSTORABLE.items():
        if location != "json" and name == "surrogate":
            continue
        # A client of its own each time: the login form's cookie is not carried over.
        client = client_for(backend_app, backend_admin.token)
        response = send(client, backend_admin, bad)
        assert response.status_code == 422, (name, response.status_code, response.json)
        assert set(response.json) == ERROR_KEYS
        assert response.json["errors"][location][field] == [UNSTORABLE_MESSAGE]
    with db.sessionmaker(backend_app)() as session:
        assert session.scalar(select(func.count()).select_from(Notification)) == 0
        assert session.scalar(select(func.count()).select_from(ApiToken)) == 0
