"""Changes that ride the dashboard's session cookie: only from Vigil's own pages, with the
CSRF token, whatever the body's type. Bearer tokens are not sent by browsers on their own,
so their calls need neither."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from monitor_app import create_app
from shared.auth.roles import Role
from shared.db import db
from tests.auth import Account
from tests.monitor_app.test_login import form_token, page_token, sign_in

pytestmark = pytest.mark.usefixtures("own_contexts")

NOTIFICATIONS = "/api/v1/notifications"
# A page of another site, and a sibling subdomain (same-site to SameSite=Lax: the cookie
# comes along), and what a sandboxed frame sends.
FOREIGN = [
    {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    {"Origin": "https://evil.example"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://wiki.localhost", "Sec-Fetch-Site": "same-site"},
    {"Origin": "null"},
]
FOREIGN_IDS = ["cross-site", "origin-only", "fetch-site-only", "sibling-subdomain", "opaque"]
# What the dashboard's own fetch() sends (the test client's host is localhost).
OWN_PAGE = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
# Bodies a page of another site can send without a CORS preflight, and JSON.
BODIES = [
    {"data": "{}", "content_type": "text/plain"},
    {"data": {"x": "1"}, "content_type": "application/x-www-form-urlencoded"},
    {"data": {"x": "1"}, "content_type": "multipart/form-data"},
    {"json": {}},
    {},
]
BODY_IDS = ["text-plain", "form", "multipart", "json", "empty"]


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite only: nothing here depends on the database."""
    return sqlite_url


@pytest.fixture
def clinician(make_account: Callable[..., Account]) -> Account:
    return make_account(Role.CLINICIAN)


@pytest.fixture
def notification_id(client: FlaskClient, clinician: Account) -> str:
    """A notification to the clinician, unread."""
    body = {"user_id": str(clinician.id), "title": "Check the drip", "text": "Bed 4."}
    created = client.post(NOTIFICATIONS, json=body)
    assert created.status_code == 201, created.json
    return created.json["id"]


@pytest.fixture
def browser(app: Flask, clinician: Account) -> FlaskClient:
    """The clinician's browser, signed in by the login form: it holds the session cookie."""
    client = app.test_client()
    sign_in(client, clinician)
    return client


def read_at(browser: FlaskClient, notification_id: str) -> str | None:
    return browser.get(f"{NOTIFICATIONS}/{notification_id}").json["read_at"]


def test_a_change_without_the_token_is_refused_whatever_its_body(
    browser: FlaskClient, notification_id: str
) -> None:
    # No Origin, no Sec-Fetch-Site (as from an older browser): the token alone decides.
    # (One browser for every body: a refusal changes nothing, and a sign-in costs argon2.)
    for name, body in zip(BODY_IDS, BODIES, strict=True):
        response = browser.post(f"{NOTIFICATIONS}/{notification_id}/read", **body)

        assert response.status_code == 400, (name, response.json)
        assert "CSRF" in response.json["message"], name
    assert read_at(browser, notification_id) is None


def test_another_sites_page_is_refused_even_with_the_token(
    browser: FlaskClient, notification_id: str
) -> None:
    # The token may leak (a cached page, a log); the browser's word on the origin does not.
    token = page_token(browser)
    for name, foreign in zip(FOREIGN_IDS, FOREIGN, strict=True):
        response = browser.post(
            f"{NOTIFICATIONS}/{notification_id}/read", headers={**foreign, "X-CSRFToken": token}
        )

        assert response.status_code == 403, (name, response.json)
        assert set(response.json) == {"code", "status", "message", "errors"}
    assert read_at(browser, notification_id) is None


@pytest.mark.parametrize("own", [OWN_PAGE, {}], ids=["own-page", "no-browser-headers"])
def test_the_dashboards_own_change_with_the_token_is_made(
    browser: FlaskClient, notification_id: str, own: dict[str, str]
) -> None:
    token = page_token(browser)

    response = browser.post(
        f"{NOTIFICATIONS}/{notification_id}/read", headers={**own, "X-CSRFToken": token}
    )

    assert response.status_code == 200, response.json
    assert read_at(browser, notification_id) is not None


@pytest.fixture
def public_app(app: Flask, database_url: str, redis_settings: dict[str, str]) -> Iterator[Flask]:
    """The monitor app (over `app`'s database) told where browsers reach it."""
    public = create_app(
        {
            "DATABASE_URL": database_url,
            "TESTING": True,
            **redis_settings,
            "RATELIMIT_ENABLED": False,
            "PUBLIC_URL": "https://vigil.hospital.example",
        }
    )
    yield public
    db.engine(public).dispose()


def test_pages_at_the_public_url_may_change(public_app: Flask, clinician: Account) -> None:
    # Behind a proxy that passes on its own Host, the browser's Origin is the public one.
    browser = public_app.test_client()
    sign_in(browser, clinician)
    token = page_token(browser)
    headers = {"Origin": "https://vigil.hospital.example", "X-CSRFToken": token}

    response = browser.post(NOTIFICATIONS, json={}, headers=headers)

    # Past the origin and CSRF checks: refused for its body, not where it came from.
    assert response.status_code == 422, response.json


def test_another_sites_form_cannot_sign_in_or_out(app: Flask, clinician: Account) -> None:
    foreign = FOREIGN[0]
    anonymous = app.test_client()
    token = form_token(anonymous)
    data = {"email": clinician.email, "password": clinician.password, "csrf_token": token}

    signed_in = anonymous.post("/login", data=data, headers=foreign)
    assert signed_in.status_code == 403
    assert anonymous.get("/api/v1/auth/me").status_code == 401

    browser = app.test_client()
    sign_in(browser, clinician)
    signed_out = browser.post("/logout", data={"csrf_token": page_token(browser)}, headers=foreign)
    assert signed_out.status_code == 403
    assert browser.get("/api/v1/auth/me").status_code == 200


def test_a_bearer_token_call_needs_neither_token_nor_origin(
    client_as: Callable[[Account | None], FlaskClient], clinician: Account, notification_id: str
) -> None:
    response = client_as(clinician).post(
        f"{NOTIFICATIONS}/{notification_id}/read", headers=FOREIGN[0], content_type="text/plain"
    )

    assert response.status_code == 200, response.json
