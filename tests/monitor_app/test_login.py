"""The dashboard's sign-in: the login form, its cookie session, CSRF, logout and idle expiry.

Each test drives the Flask test client and its cookie jar as a browser would: the form's
CSRF token, then the cookie the sign-in sets.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from monitor_app import create_app
from monitor_app.auth import services
from monitor_app.auth.pages import LOCKED_OUT, SIGN_IN_REFUSED, safe_next
from shared.audit import AuditEvent
from shared.auth.roles import Role
from shared.db import db, migrate, utcnow
from shared.identity import User, UserSession
from tests.auth import TEST_PASSWORD, Account, create_account

COOKIE = "vigil_session"
ME = "/api/v1/auth/me"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')

pytestmark = pytest.mark.usefixtures("own_contexts")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite only: what this module checks does not depend on the database (test_audit and
    test_scoping, which write what the backends store differently, run on both)."""
    return sqlite_url


# -- helpers --------------------------------------------------------------------------------
def form_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of the login form, as the browser would read it."""
    response = client.get(path)
    assert response.status_code == 200, response.status
    match = CSRF_FIELD.search(response.get_data(as_text=True))
    assert match, "the form carries no CSRF token"
    return match.group(1)


def page_token(client: FlaskClient) -> str:
    """The CSRF token the dashboard page hands its scripts."""
    response = client.get("/")
    assert response.status_code == 200, response.status
    match = CSRF_META.search(response.get_data(as_text=True))
    assert match, "the dashboard carries no CSRF token"
    return match.group(1)


def submit(
    client: FlaskClient,
    email: str,
    password: str,
    next_path: str | None = None,
    token: str | None = None,
    **options,
) -> TestResponse:
    """POST the login form with the token of a form just loaded (or `token`)."""
    data = {"email": email, "password": password}
    if next_path is not None:
        data["next"] = next_path
    data["csrf_token"] = token if token is not None else form_token(client)
    return client.post("/login", data=data, **options)


def sign_in(client: FlaskClient, account: Account, next_path: str | None = None) -> TestResponse:
    response = submit(client, account.email, account.password, next_path)
    assert response.status_code == 303, response.get_data(as_text=True)
    return response


def set_cookie_header(response: TestResponse) -> SimpleCookie:
    cookies = SimpleCookie()
    for header in response.headers.getlist("Set-Cookie"):
        cookies.load(header)
    return cookies


def cookie_value(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None, "no session cookie"
    return cookie.value


def session_secret(app: Flask, value: str) -> str | None:
    """The server-session secret a cookie value holds (the cookie is signed, not encrypted)."""
    data = app.session_interface.get_signing_serializer(app).loads(value)
    return data.get("sid")


def with_cookie(app: Flask, value: str) -> FlaskClient:
    """A fresh browser that holds the cookie `value` (stolen, kept, or planted)."""
    client = app.test_client()
    client.set_cookie(COOKIE, value)
    return client


def sessions_of(app: Flask, user_id: uuid.UUID) -> list[UserSession]:
    with db.sessionmaker(app)() as session:
        query = select(UserSession).where(UserSession.user_id == user_id)
        return list(session.scalars(query.order_by(UserSession.created_at)))


def login_redirect(response: TestResponse, next_path: str) -> None:
    assert response.status_code == 302, response.status
    location = response.headers["Location"]
    assert location.startswith("/login?"), location
    assert re.search(r"[?&]next=([^&]+)", location).group(1).replace("%2F", "/") == next_path


@pytest.fixture
def clinician(make_account: Callable[..., Account]) -> Account:
    return make_account(Role.CLINICIAN)


@pytest.fixture
def browser(app: Flask) -> FlaskClient:
    """A test client with no credentials but its cookie jar."""
    return app.test_client()


# -- the page -------------------------------------------------------------------------------
def test_the_login_page_is_public_and_carries_a_csrf_token(browser: FlaskClient) -> None:
    response = browser.get("/login?next=/docs")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert CSRF_FIELD.search(html)
    assert 'name="next" value="/docs"' in html
    assert 'type="password"' in html
    # Never cached, never framed (a framed login page is a clickjacking target).
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    for link in re.findall(r'href="(/static/[^"]+)"', html):
        asset = browser.get(link)
        assert asset.status_code == 200, link
        asset.close()


def test_anonymous_pages_go_to_the_login_page_and_the_api_answers_401(
    browser: FlaskClient,
) -> None:
    login_redirect(browser.get("/"), "/")
    login_redirect(browser.get("/docs"), "/docs")

    response = browser.get(ME)
    assert response.status_code == 401
    assert response.json["code"] == 401
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")


# -- signing in -----------------------------------------------------------------------------
def test_signing_in_sets_an_httponly_samesite_cookie_and_opens_the_dashboard(
    app: Flask, browser: FlaskClient, clinician: Account
) -> None:
    response = sign_in(browser, clinician, "/docs")

    assert response.headers["Location"] == "/docs"
    cookie = set_cookie_header(response)[COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert not cookie["secure"]
    dashboard = browser.get("/")
    assert dashboard.status_code == 200
    assert clinician.email in dashboard.get_data(as_text=True)
    me = browser.get(ME)
    assert me.status_code == 200 and me.json["email"] == clinician.email
    (row,) = sessions_of(app, clinician.id)
    assert row.ended_at is None
    # The cookie holds the session's secret; the database only its digest.
    secret = session_secret(app, cookie_value(browser))
    assert secret and row.secret_hash == services.digest(secret) != secret


def test_the_cookie_is_secure_when_configured(
    sqlite_url: str, redis_settings: dict[str, str]
) -> None:
    app = create_app(
        {
            "DATABASE_URL": sqlite_url,
            "TESTING": True,
            **redis_settings,
            "RATELIMIT_ENABLED": False,
            "SESSION_COOKIE_SECURE": True,
        }
    )
    migrate(db.engine(app))
    try:
        account = create_account(db.sessionmaker(app), Role.CLINICIAN)
        client = app.test_client()
        https = {"base_url": "https://vigil.example"}
        token = CSRF_FIELD.search(client.get("/login", **https).get_data(as_text=True)).group(1)
        # Over HTTPS, Flask-WTF also wants the form posted from this site.
        response = submit(
            client,
            account.email,
            account.password,
            token=token,
            headers={"Referer": "https://vigil.example/login"},
            **https,
        )
        assert response.status_code == 303, response.get_data(as_text=True)
        cookie = set_cookie_header(response)[COOKIE]
        assert cookie["secure"] is True
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Lax"
    finally:
        db.engine(app).dispose()


@pytest.mark.parametrize("token", [None, "", "forged-token", "IjEyMyI.Zm9v.YmFy"])
def test_a_sign_in_without_the_forms_csrf_token_is_refused(
    app: Flask, browser: FlaskClient, clinician: Account, token: str | None
) -> None:
    form_token(browser)  # the browser holds a session with a token, just not this one
    data = {"email": clinician.email, "password": clinician.password}
    if token is not None:
        data["csrf_token"] = token

    response = browser.post("/login", data=data)

    assert response.status_code == 400
    assert response.json["code"] == 400
    assert "CSRF" in response.json["message"]
    assert browser.get(ME).status_code == 401
    assert sessions_of(app, clinician.id) == []


def test_a_csrf_token_from_another_browser_does_not_sign_in(app: Flask, clinician: Account) -> None:
    attacker = app.test_client()
    victim = app.test_client()
    stolen = form_token(attacker)
    form_token(victim)

    response = submit(victim, clinician.email, clinician.password, token=stolen)

    assert response.status_code == 400
    assert sessions_of(app, clinician.id) == []


def test_a_wrong_password_or_unknown_address_gets_one_generic_answer(
    browser: FlaskClient, clinician: Account
) -> None:
    wrong = submit(browser, clinician.email, "not the password at all")
    unknown = submit(browser, "nobody@vigil.test", TEST_PASSWORD)

    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.mimetype == "text/html"
        html = response.get_data(as_text=True)
        assert SIGN_IN_REFUSED in html
        assert CSRF_FIELD.search(html), "the form is shown again, ready to retry"
    # The address typed is kept in the form (escaped), the password never.
    assert f'value="{clinician.email}"' in wrong.get_data(as_text=True)
    assert "not the password at all" not in wrong.get_data(as_text=True)
    assert browser.get(ME).status_code == 401


def test_the_form_escapes_what_was_typed(browser: FlaskClient) -> None:
    response = submit(browser, '"><script>alert(1)</script>@x', "whatever password")

    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


def test_a_disabled_account_cannot_sign_in(
    app: Flask, browser: FlaskClient, clinician: Account
) -> None:
    with db.sessionmaker(app).begin() as session:
        services.set_active(session, clinician.email, False)

    response = submit(browser, clinician.email, clinician.password)

    assert response.status_code == 401
    assert SIGN_IN_REFUSED in response.get_data(as_text=True)
    assert sessions_of(app, clinician.id) == []


def test_a_machine_account_cannot_sign_in_to_the_dashboard(
    app: Flask, browser: FlaskClient, make_account: Callable[..., Account]
) -> None:
    integration = make_account(Role.INTEGRATION)

    response = submit(browser, integration.email, integration.password)

    assert response.status_code == 401
    assert SIGN_IN_REFUSED in response.get_data(as_text=True)
    assert sessions_of(app, integration.id) == []


def test_five_failures_through_the_form_lock_the_account(
    app: Flask, browser: FlaskClient, clinician: Account
) -> None:
    token = form_token(browser)
    answers = [
        submit(browser, clinician.email, f"wrong password {i}", token=token) for i in range(5)
    ]

    assert [a.status_code for a in answers] == [401] * 5
    for answer in answers[:4]:
        assert SIGN_IN_REFUSED in answer.get_data(as_text=True)
    assert LOCKED_OUT in answers[4].get_data(as_text=True)
    # Locked: even the right password is refused, and says so.
    right = submit(browser, clinician.email, clinician.password, token=token)
    assert right.status_code == 401
    assert LOCKED_OUT in right.get_data(as_text=True)
    assert sessions_of(app, clinician.id) == []
    with db.sessionmaker(app)() as session:
        user = session.get(User, clinician.id)
        assert user.locked_until is not None and user.locked_until > utcnow()


# -- fixation -------------------------------------------------------------------------------
def test_signing_in_replaces_a_planted_session(app: Flask, make_account) -> None:
    """An attacker plants their own signed-in cookie in the victim's browser; the victim's
    sign-in must not keep it (session fixation), and the attacker's copy stops working."""
    attacker_account = make_account(Role.VIEWER)
    victim_account = make_account(Role.CLINICIAN)
    attacker = app.test_client()
    sign_in(attacker, attacker_account)
    planted_token = page_token(attacker)
    planted = cookie_value(attacker)
    planted_secret = session_secret(app, planted)

    victim = with_cookie(app, planted)
    response = submit(victim, victim_account.email, victim_account.password, token=planted_token)

    assert response.status_code == 303
    fresh = cookie_value(victim)
    assert fresh != planted
    fresh_secret = session_secret(app, fresh)
    assert fresh_secret and fresh_secret != planted_secret
    assert victim.get(ME).json["email"] == victim_account.email
    (victim_row,) = sessions_of(app, victim_account.id)
    (planted_row,) = sessions_of(app, attacker_account.id)
    assert victim_row.id != planted_row.id
    assert victim_row.secret_hash == services.digest(fresh_secret)
    # The planted session is over: its cookie signs nobody in any more.
    assert planted_row.ended_at is not None
    assert with_cookie(app, planted).get(ME).status_code == 401
    # Nothing of the cookie from before survives, its CSRF token neither.
    stale = victim.post("/api/v1/notifications", json={}, headers={"X-CSRFToken": planted_token})
    assert stale.status_code == 400


def test_an_anonymous_cookie_planted_before_sign_in_gets_a_new_session(
    app: Flask, clinician: Account
) -> None:
    early = app.test_client()
    token = form_token(early)
    planted = cookie_value(early)
    assert session_secret(app, planted) is None

    victim = with_cookie(app, planted)
    assert submit(victim, clinician.email, clinician.password, token=token).status_code == 303

    assert cookie_value(victim) != planted
    assert with_cookie(app, planted).get(ME).status_code == 401


# -- next -----------------------------------------------------------------------------------
HOSTILE_NEXT = [
    "https://evil.example/",
    "//evil.example",
    "//evil.example/path",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "http:evil.example",
    "javascript:alert(1)",
    "evil.example",
    "",
]


@pytest.mark.parametrize("next_path", HOSTILE_NEXT)
def test_next_never_leads_to_another_site(
    browser: FlaskClient, clinician: Account, next_path: str
) -> None:
    page = browser.get("/login", query_string={"next": next_path}).get_data(as_text=True)
    assert 'name="next" value="/"' in page

    response = sign_in(browser, clinician, next_path)

    assert response.headers["Location"] == "/"


@pytest.mark.parametrize(
    "next_path", ["/", "/docs", "/docs?x=1", "/#/patient/5f0c3a56-0d6b-4a57-9a3c-1b2d3e4f5a6b"]
)
def test_next_leads_back_to_a_page_of_this_site(
    browser: FlaskClient, clinician: Account, next_path: str
) -> None:
    assert sign_in(browser, clinician, next_path).headers["Location"] == next_path


def test_safe_next() -> None:
    assert safe_next(None) == "/"
    assert safe_next("/docs?x=1") == "/docs?x=1"
    for hostile in HOSTILE_NEXT:
        assert safe_next(hostile) == "/", hostile


def test_the_login_page_sends_a_signed_in_browser_on(
    browser: FlaskClient, clinician: Account
) -> None:
    sign_in(browser, clinician)

    response = browser.get("/login?next=/docs")
    assert response.status_code == 303
    assert response.headers["Location"] == "/docs"
    assert browser.get("/login?next=//evil.example").headers["Location"] == "/"


# -- logout ---------------------------------------------------------------------------------
def test_logout_ends_the_session_and_its_cookie(
    app: Flask, browser: FlaskClient, clinician: Account
) -> None:
    sign_in(browser, clinician)
    token = page_token(browser)
    kept = cookie_value(browser)

    response = browser.post("/logout", data={"csrf_token": token})

    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    # The browser is told to drop the cookie...
    assert set_cookie_header(response)[COOKIE]["expires"]
    assert browser.get_cookie(COOKIE) is None
    login_redirect(browser.get("/"), "/")
    # ...and a copy kept of it is worth nothing: the server session is over.
    (row,) = sessions_of(app, clinician.id)
    assert row.ended_at is not None
    kept_client = with_cookie(app, kept)
    login_redirect(kept_client.get("/"), "/")
    assert kept_client.get(ME).status_code == 401


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_a_logout_without_the_csrf_token_is_refused(
    app: Flask, browser: FlaskClient, clinician: Account, token: str | None
) -> None:
    """Another site's form must not sign the user out."""
    sign_in(browser, clinician)
    page_token(browser)

    response = browser.post("/logout", data={} if token is None else {"csrf_token": token})

    assert response.status_code == 400
    assert browser.get(ME).status_code == 200
    (row,) = sessions_of(app, clinician.id)
    assert row.ended_at is None


def test_logout_after_the_session_ended_still_signs_out(
    app: Flask, browser: FlaskClient, clinician: Account
) -> None:
    """The form the page showed still works: no detour to sign in (and back to GET /logout)."""
    sign_in(browser, clinician)
    token = page_token(browser)
    with db.sessionmaker(app).begin() as session:
        session.execute(
            update(UserSession).where(UserSession.user_id == clinician.id).values(ended_at=utcnow())
        )

    response = browser.post("/logout", data={"csrf_token": token})

    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    assert browser.get_cookie(COOKIE) is None


def test_an_anonymous_logout_needs_the_token_too(browser: FlaskClient) -> None:
    assert browser.post("/logout").status_code == 400
    token = form_token(browser)

    response = browser.post("/logout", data={"csrf_token": token})

    assert response.status_code == 303
    assert response.headers["Location"] == "/login"


# -- idle, disabled -------------------------------------------------------------------------
def test_an_idle_session_ends(app: Flask, browser: FlaskClient, clinician: Account) -> None:
    sign_in(browser, clinician)
    assert browser.get(ME).status_code == 200
    idle = timedelta(seconds=app.config["SESSION_IDLE_SECONDS"])
    with db.sessionmaker(app).begin() as session:
        (row,) = session.scalars(select(UserSession).where(UserSession.user_id == clinician.id))
        row.last_seen_at = utcnow() - idle - timedelta(seconds=1)
    kept = cookie_value(browser)

    login_redirect(browser.get("/"), "/")
    assert with_cookie(app, kept).get(ME).status_code == 401
    (row,) = sessions_of(app, clinician.id)
    assert row.ended_at is not None


def test_a_session_in_use_does_not_go_idle(
    app: Flask, browser: FlaskClient, clinician: Account
) -> None:
    sign_in(browser, clinician)
    idle = timedelta(seconds=app.config["SESSION_IDLE_SECONDS"])
    with db.sessionmaker(app).begin() as session:
        (row,) = session.scalars(select(UserSession).where(UserSession.user_id == clinician.id))
        row.last_seen_at = utcnow() - idle + timedelta(seconds=60)

    assert browser.get(ME).status_code == 200
    (row,) = sessions_of(app, clinician.id)
    assert utcnow() - row.last_seen_at < timedelta(seconds=60)


def test_a_disabled_users_session_stops_at_once(
    app: Flask, browser: FlaskClient, clinician: Account
) -> None:
    sign_in(browser, clinician)
    assert browser.get("/").status_code == 200

    with db.sessionmaker(app).begin() as session:
        services.set_active(session, clinician.email, False)

    login_redirect(browser.get("/"), "/")
    assert browser.get(ME).status_code == 401


# -- CSRF on the API ------------------------------------------------------------------------
@pytest.fixture
def notification_body(make_patient, admin: Account) -> dict[str, str]:
    patient = make_patient()
    return {
        "user_id": str(admin.id),
        "title": "Check the drip",
        "text": "Bed 4.",
        "patient_uuid": patient.uuid,
    }


@pytest.mark.parametrize("header", [None, "", "forged-token"])
def test_a_cookie_signed_change_needs_the_csrf_header(
    browser: FlaskClient, admin: Account, notification_body: dict[str, str], header: str | None
) -> None:
    sign_in(browser, admin)
    headers = {} if header is None else {"X-CSRFToken": header}

    response = browser.post("/api/v1/notifications", json=notification_body, headers=headers)

    assert response.status_code == 400
    assert response.json["code"] == 400
    listed = browser.get("/api/v1/notifications")
    assert listed.status_code == 200 and listed.json == []


def test_a_cookie_signed_change_with_the_csrf_header_is_allowed(
    browser: FlaskClient, admin: Account, notification_body: dict[str, str]
) -> None:
    sign_in(browser, admin)
    token = page_token(browser)

    created = browser.post(
        "/api/v1/notifications", json=notification_body, headers={"X-CSRFToken": token}
    )
    assert created.status_code == 201, created.json
    notification_id = created.json["id"]

    refused = browser.post(f"/api/v1/notifications/{notification_id}/read")
    assert refused.status_code == 400
    assert browser.get(f"/api/v1/notifications/{notification_id}").json["read_at"] is None
    read = browser.post(
        f"/api/v1/notifications/{notification_id}/read", headers={"X-CSRFToken": token}
    )
    assert read.status_code == 200
    assert read.json["read_at"] is not None


def test_a_bearer_token_needs_no_csrf_token(
    client_as: Callable[[Account | None], FlaskClient],
    admin: Account,
    notification_body: dict[str, str],
) -> None:
    response = client_as(admin).post("/api/v1/notifications", json=notification_body)

    assert response.status_code == 201, response.json


def test_reads_need_no_csrf_token(browser: FlaskClient, clinician: Account) -> None:
    sign_in(browser, clinician)

    assert browser.get("/api/v1/notifications").status_code == 200
    assert browser.get(ME).status_code == 200


def test_form_sign_in_sign_out_and_refusals_are_audited(
    app: Flask, clinician: Account, make_account: Callable[..., Account]
) -> None:
    browser = app.test_client()
    sign_in(browser, clinician)
    token = page_token(browser)
    assert browser.post("/logout", data={"csrf_token": token}).status_code == 303
    machine = make_account(Role.INTEGRATION)
    assert submit(app.test_client(), machine.email, machine.password).status_code == 401
    with db.sessionmaker(app)() as session:
        trail = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [(e.action, e.user_id, e.outcome, e.detail) for e in trail] == [
        ("auth.sign_in", clinician.id, "allowed", {"via": "form"}),
        ("auth.sign_out", clinician.id, "allowed", {"via": "form"}),
        (
            "auth.sign_in_failed",
            machine.id,
            "denied",
            {"reason": "machine_account", "via": "form"},
        ),
    ]
