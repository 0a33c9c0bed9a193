"""Rate limits: whose they are (a user's, an address's), their headers, and Redis down."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from monitor_app import create_app
from shared.auth.roles import Role
from shared.db import db, migrate
from tests.auth import Account, client_for
from tests.monitor_app.test_login import COOKIE, page_token, sign_in

ME = "/api/v1/auth/me"
TOKEN = "/api/v1/auth/token"  # noqa: S105 (a path)
NOTIFICATIONS = "/api/v1/notifications"
ERROR_KEYS = {"code", "status", "message", "errors"}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite only: limits are counted in Redis, whatever the database."""
    return sqlite_url


@pytest.fixture
def make_app(database_url: str, redis_settings: dict[str, str]) -> Iterator[Callable[..., Flask]]:
    """A monitor app with its limits on, over the test's database and Redis namespace."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        settings = {"DATABASE_URL": database_url, "TESTING": True, **redis_settings}
        app = create_app({**settings, "RATELIMIT_ENABLED": True, **overrides})
        migrate(db.engine(app))
        apps.append(app)
        return app

    yield make
    for app in apps:
        db.engine(app).dispose()


def wrong_sign_in(client: FlaskClient, **headers: str) -> int:
    """A sign-in that fails (and counts against the caller's address), its status."""
    body = {"username": "nobody@vigil.test", "password": "guess"}
    return client.post(TOKEN, json=body, headers=headers).status_code


def notification_for(account: Account) -> dict[str, str]:
    return {"user_id": str(account.id), "title": "Check the drip", "text": "Bed 4."}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [("GET", ME, False, 200), ("POST", NOTIFICATIONS, True, 201)],
    ids=["read", "create"],
)
def test_retry_after_is_sent_only_with_429(
    make_app: Callable[..., Flask], admin: Account, method: str, path: str, body: bool, status: int
) -> None:
    client = client_for(make_app(RATE_LIMIT="2 per minute"), admin.token)
    options = {"json": notification_for(admin)} if body else {}

    answers = [client.open(path, method=method, **options) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [status, status, 429]
    for served in answers[:2]:
        assert "Retry-After" not in served.headers
        assert served.headers["X-RateLimit-Limit"] == "2"
    assert [answer.headers["X-RateLimit-Remaining"] for answer in answers] == ["1", "0", "0"]
    assert 0 < int(answers[2].headers["Retry-After"]) <= 60


def test_two_users_at_one_address_have_a_limit_each(
    make_app: Callable[..., Flask], make_account: Callable[..., Account]
) -> None:
    app = make_app(RATE_LIMIT="2 per minute")
    first, second = make_account(Role.CLINICIAN), make_account(Role.CLINICIAN)

    firsts = [client_for(app, first.token).get(ME).status_code for _ in range(3)]
    seconds = [client_for(app, second.token).get(ME).status_code for _ in range(2)]

    assert firsts == [200, 200, 429]
    assert seconds == [200, 200]


def test_a_forged_x_forwarded_for_does_not_reset_an_address_limit(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app(RATE_LIMIT="2 per minute").test_client()

    answers = [wrong_sign_in(client, **{"X-Forwarded-For": f"10.0.0.{i}"}) for i in range(3)]

    assert answers == [401, 401, 429]


def test_behind_a_configured_proxy_each_forwarded_address_has_its_limit(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app(RATE_LIMIT="2 per minute", PROXY_FIX_X_FOR=1).test_client()
    ward_pc = {"X-Forwarded-For": "10.0.0.7"}

    answers = [wrong_sign_in(client, **ward_pc) for _ in range(3)]
    other = wrong_sign_in(client, **{"X-Forwarded-For": "10.0.0.8"})

    assert answers == [401, 401, 429]
    assert other == 401


@pytest.mark.parametrize(
    "path", [NOTIFICATIONS, f"{NOTIFICATIONS}/{uuid.uuid4()}/read"], ids=["create", "mark-read"]
)
def test_without_redis_changes_are_refused_and_reads_served(
    make_app: Callable[..., Flask], admin: Account, path: str, unreachable_redis: dict[str, str]
) -> None:
    app = make_app(**unreachable_redis)
    client = client_for(app, admin.token)

    refused = client.post(path, json=notification_for(admin))
    listed = client.get(NOTIFICATIONS)

    assert refused.status_code == 503, refused.json
    assert set(refused.json) == ERROR_KEYS
    assert int(refused.headers["Retry-After"]) > 0
    assert listed.status_code == 200
    assert listed.json == []


@pytest.mark.usefixtures("own_contexts")
def test_without_redis_a_browser_can_still_sign_out(
    make_app: Callable[..., Flask],
    make_account: Callable[..., Account],
    unreachable_redis: dict[str, str],
) -> None:
    # Signed in while Redis was up; the same database and signing key, Redis gone.
    browser = make_app().test_client()
    sign_in(browser, make_account(Role.CLINICIAN))
    token = page_token(browser)
    ward_pc = make_app(**unreachable_redis).test_client()
    ward_pc.set_cookie(COOKIE, browser.get_cookie(COOKIE).value)

    assert ward_pc.get(ME).status_code == 200
    assert ward_pc.post("/logout", data={"csrf_token": token}).status_code == 303
    assert ward_pc.get(ME).status_code == 401
