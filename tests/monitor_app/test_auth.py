"""Signing in: passwords for access tokens, lockout, who am I, API tokens, and the tokens and
headers an attacker would try instead."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from monitor_app import create_app
from monitor_app.auth import services
from shared.auth.roles import Role, Scope
from shared.auth.tokens import InvalidTokenError, TokenClaims, TokenKind
from shared.db import db
from shared.identity import ApiToken, User
from tests.auth import TEST_PASSWORD, Account, bearer, client_for, signer, token_for
from tests.forgeries import FORGERIES

TOKEN_URL = "/api/v1/auth/token"
ME_URL = "/api/v1/auth/me"
TOKENS_URL = "/api/v1/auth/tokens"
ERROR_KEYS = {"code", "status", "message", "errors"}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite only: what this module checks does not depend on the database (test_audit and
    test_scoping, which write what the backends store differently, run on both)."""
    return sqlite_url


def sign_in(client: FlaskClient, username: str, password: Any) -> Any:
    return client.post(TOKEN_URL, json={"username": username, "password": password})


def assert_unauthorized(response: Any) -> None:
    """401 with the bearer challenge and the shared JSON error body."""
    assert response.status_code == 401, (response.status_code, response.get_data(as_text=True))
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert set(response.json) == ERROR_KEYS
    assert response.json["code"] == 401


def set_user(app: Flask, account: Account, **values: Any) -> None:
    """Change the account's row directly, as another process (or an admin's tool) would."""
    with db.sessionmaker(app).begin() as session:
        session.execute(update(User).where(User.id == account.id).values(**values))


def read_user(app: Flask, account: Account) -> User:
    with db.sessionmaker(app)() as session:
        user = session.get(User, account.id)
        session.expunge(user)
        return user


# -- POST /auth/token ----------------------------------------------------------------------------


def test_the_right_password_gets_an_access_token(
    app: Flask, anonymous: FlaskClient, make_account: Callable[..., Account]
) -> None:
    clinician = make_account(Role.CLINICIAN)

    # However the address is typed.
    response = sign_in(anonymous, f"  {clinician.email.upper()} ", clinician.password)

    assert response.status_code == 200, response.json
    assert set(response.json) == {"access_token", "token_type", "expires_in"}
    assert response.json["token_type"] == "Bearer"
    assert response.json["expires_in"] == app.config["ACCESS_TOKEN_SECONDS"]
    me = anonymous.get(ME_URL, headers=bearer(response.json["access_token"]))
    assert me.status_code == 200
    assert me.json["id"] == str(clinician.id)
    assert read_user(app, clinician).last_login_at is not None


def test_wrong_password_and_unknown_user_are_refused_alike(
    anonymous: FlaskClient, make_account: Callable[..., Account]
) -> None:
    viewer = make_account(Role.VIEWER)

    wrong = sign_in(anonymous, viewer.email, "not the password at all")
    unknown = sign_in(anonymous, f"nobody-{uuid.uuid4().hex[:6]}@vigil.test", viewer.password)

    assert_unauthorized(wrong)
    assert_unauthorized(unknown)
    # Nothing tells whether the address has an account.
    assert wrong.json == unknown.json
    assert "access_token" not in wrong.get_data(as_text=True)


def test_failures_lock_the_account_until_the_lockout_ends(
    app: Flask, anonymous: FlaskClient, make_account: Callable[..., Account]
) -> None:
    clinician = make_account(Role.CLINICIAN)
    failures = app.config["LOGIN_MAX_FAILURES"]

    answers = [sign_in(anonymous, clinician.email, f"wrong password {i}") for i in range(failures)]

    for answer in answers:
        assert_unauthorized(answer)
    user = read_user(app, clinician)
    lockout = timedelta(seconds=app.config["LOGIN_LOCKOUT_SECONDS"])
    assert user.locked_until is not None
    assert user.locked_until - datetime.now(UTC) > lockout - timedelta(minutes=1)
    # Even the right password is refused while the lockout lasts.
    assert_unauthorized(sign_in(anonymous, clinician.email, clinician.password))

    # The lockout is over (moved into the past rather than waited for).
    set_user(app, clinician, locked_until=datetime.now(UTC) - timedelta(seconds=1))
    assert sign_in(anonymous, clinician.email, clinician.password).status_code == 200
    user = read_user(app, clinician)
    assert (user.failed_logins, user.locked_until) == (0, None)


def test_a_success_resets_the_failure_count(
    app: Flask, anonymous: FlaskClient, make_account: Callable[..., Account]
) -> None:
    clinician = make_account(Role.CLINICIAN)
    failures = app.config["LOGIN_MAX_FAILURES"]
    for i in range(failures - 1):
        assert_unauthorized(sign_in(anonymous, clinician.email, f"wrong password {i}"))

    assert sign_in(anonymous, clinician.email, clinician.password).status_code == 200
    assert_unauthorized(sign_in(anonymous, clinician.email, "wrong password again"))

    # One failure after the success: far from a lockout.
    assert sign_in(anonymous, clinician.email, clinician.password).status_code == 200


def test_a_disabled_account_cannot_sign_in(
    app: Flask, anonymous: FlaskClient, make_account: Callable[..., Account]
) -> None:
    viewer = make_account(Role.VIEWER)
    set_user(app, viewer, active=False)

    response = sign_in(anonymous, viewer.email, viewer.password)

    assert_unauthorized(response)
    assert response.json["message"] == sign_in(anonymous, viewer.email, "wrong").json["message"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "someone@vigil.test"},
        {"password": TEST_PASSWORD},
        {"username": "", "password": TEST_PASSWORD},
        {"username": "someone@vigil.test", "password": ""},
        {"username": "someone@vigil.test", "password": "x" * 1025},
        {"username": "a" * 250 + "@vigil.test", "password": TEST_PASSWORD},
        {"username": "someone@vigil.test", "password": 123456789012},
        {"username": ["someone@vigil.test"], "password": TEST_PASSWORD},
        {"username": {"$ne": None}, "password": TEST_PASSWORD},
        {"username": "someone@vigil.test", "password": None},
        {"username": "someone@vigil.test", "password": True},
        {"username": "someone@vigil.test", "password": TEST_PASSWORD, "role": "admin"},
        [{"username": "someone@vigil.test", "password": TEST_PASSWORD}],
        "someone@vigil.test",
    ],
    ids=[
        "empty",
        "no-password",
        "no-username",
        "empty-username",
        "empty-password",
        "huge-password",
        "huge-username",
        "number-password",
        "list-username",
        "operator-username",
        "null-password",
        "boolean-password",
        "extra-field",
        "list-body",
        "string-body",
    ],
)
def test_malformed_sign_ins_are_refused_before_any_check(
    app: Flask, anonymous: FlaskClient, make_account: Callable[..., Account], body: Any
) -> None:
    account = make_account(Role.CLINICIAN, email="someone@vigil.test")

    response = anonymous.post(TOKEN_URL, json=body)

    assert response.status_code == 422, response.json
    assert set(response.json) == ERROR_KEYS
    assert "access_token" not in response.json
    # A malformed request is no failed sign-in: it counts toward no lockout.
    assert read_user(app, account).failed_logins == 0


def test_the_longest_password_allowed_is_checked(
    anonymous: FlaskClient, make_account: Callable[..., Account]
) -> None:
    account = make_account(Role.CLINICIAN)
    assert_unauthorized(sign_in(anonymous, account.email, "x" * 1024))


def test_a_body_that_is_not_json_is_refused(anonymous: FlaskClient) -> None:
    response = anonymous.post(
        TOKEN_URL, data='{"username": "a@b.c", "password":', content_type="application/json"
    )
    assert response.status_code == 400
    assert set(response.json) == ERROR_KEYS


def test_sign_ins_are_rate_limited(
    database_url: str, redis_settings: dict[str, str], make_account: Callable[..., Account]
) -> None:
    # Guessing passwords runs into the limit before the lockout of any one account matters.
    account = make_account(Role.CLINICIAN)
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "TESTING": True,
            **redis_settings,
            "RATELIMIT_ENABLED": True,
            "RATE_LIMIT": "3 per minute",
        }
    )
    client = client_for(app, None)
    try:
        answers = [sign_in(client, account.email, f"guess {i}").status_code for i in range(4)]
        limited = sign_in(client, account.email, account.password)
    finally:
        db.engine(app).dispose()

    assert answers == [401, 401, 401, 429]
    assert limited.status_code == 429
    assert "access_token" not in limited.json


# -- GET /auth/me --------------------------------------------------------------------------------


def test_me_names_the_caller(client_as: Callable, make_account: Callable[..., Account]) -> None:
    clinician = make_account(Role.CLINICIAN, wards=["ICU North", "ICU South"])

    response = client_as(clinician).get(ME_URL)

    assert response.status_code == 200
    body = response.json
    assert body["id"] == str(clinician.id)
    assert body["email"] == clinician.email
    assert body["role"] == "clinician"
    assert sorted(ward["name"] for ward in body["wards"]) == ["ICU North", "ICU South"]
    assert all(uuid.UUID(ward["id"]) for ward in body["wards"])
    assert body["scopes"] == []
    assert uuid.UUID(body["token_id"])


def test_me_without_credentials_is_refused(anonymous: FlaskClient) -> None:
    assert_unauthorized(anonymous.get(ME_URL))


# -- accounts that change ------------------------------------------------------------------------


def test_a_disabled_account_stops_at_once(
    app: Flask, client_as: Callable, make_account: Callable[..., Account]
) -> None:
    clinician = make_account(Role.CLINICIAN)
    client = client_as(clinician)
    assert client.get(ME_URL).status_code == 200

    with db.sessionmaker(app).begin() as session:
        services.set_active(session, clinician.email, False)

    # The token has not expired; the account is looked up on every request.
    assert_unauthorized(client.get(ME_URL))
    assert_unauthorized(client.get("/api/v1/patients"))

    with db.sessionmaker(app).begin() as session:
        services.set_active(session, clinician.email, True)
    assert client.get(ME_URL).status_code == 200


def test_a_role_change_takes_effect_on_the_next_request(
    app: Flask, client_as: Callable, make_account: Callable[..., Account]
) -> None:
    account = make_account(Role.VIEWER)
    client = client_as(account)
    mark_read = f"/api/v1/notifications/{uuid.uuid4()}/read"
    assert client.post(mark_read).status_code == 403

    set_user(app, account, role=Role.CLINICIAN.value)

    # The same token: allowed now, so the unknown notification is looked for.
    assert client.post(mark_read).status_code == 404
    assert client.get(ME_URL).json["role"] == "clinician"


def test_a_demoted_admin_loses_admin_rights_at_once(
    app: Flask, client_as: Callable, make_account: Callable[..., Account]
) -> None:
    account = make_account(Role.ADMIN)
    client = client_as(account)
    assert client.get(TOKENS_URL).status_code == 200

    set_user(app, account, role=Role.VIEWER.value)

    # The token still says admin; the account says otherwise, and the account wins.
    assert client.get(TOKENS_URL).status_code == 403


# -- tokens an attacker would try ----------------------------------------------------------------


# Tokens that only a database can refuse: signed with the real key, for no such account or
# for an API token never issued.
UNKNOWN_TO_THE_DATABASE: dict[str, Callable[[Account], str]] = {
    "someone-unknown": lambda _account: token_for(Role.ADMIN),
    "api-token-never-issued": lambda account: signer().sign(
        TokenClaims(uuid.uuid4(), account.id, account.role.value, TokenKind.API)
    ),
}
ALL_FORGERIES = {**FORGERIES, **UNKNOWN_TO_THE_DATABASE}


@pytest.mark.parametrize("forge", ALL_FORGERIES.values(), ids=ALL_FORGERIES.keys())
def test_forged_tokens_are_refused(
    anonymous: FlaskClient, make_account: Callable[..., Account], forge: Callable
) -> None:
    account = make_account(Role.VIEWER)
    # The genuine token works, so the forgery alone is what is refused.
    assert anonymous.get(ME_URL, headers=account.headers).status_code == 200

    token = forge(account)

    assert token != account.token
    assert_unauthorized(anonymous.get(ME_URL, headers=bearer(token)))
    assert_unauthorized(anonymous.get("/api/v1/patients", headers=bearer(token)))


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "Basic YWRtaW46YWRtaW4=",
        "Token abc",
        "bearer",
        "Bearer a b c",
        "B" * 20000,
        "Bearer " + "x" * 20000,
    ],
    ids=[
        "scheme-only",
        "scheme-space",
        "blank-token",
        "basic",
        "other-scheme",
        "lowercase-scheme-only",
        "spaces-in-token",
        "huge-garbage",
        "huge-token",
    ],
)
def test_malformed_authorization_headers_are_refused(anonymous: FlaskClient, header: str) -> None:
    response = anonymous.get(ME_URL, headers={"Authorization": header})
    assert_unauthorized(response)


def test_the_scheme_name_is_case_insensitive(
    anonymous: FlaskClient, make_account: Callable[..., Account]
) -> None:
    account = make_account(Role.VIEWER)
    response = anonymous.get(ME_URL, headers={"Authorization": f"bEaReR {account.token}"})
    assert response.status_code == 200


# -- API tokens ----------------------------------------------------------------------------------


@pytest.fixture
def machine(make_account: Callable[..., Account]) -> Account:
    return make_account(Role.INTEGRATION)


def create_token(client: FlaskClient, email: str, **fields: Any) -> Any:
    return client.post(TOKENS_URL, json={"email": email, "name": "bed 12 gateway", **fields})


def test_an_admin_creates_an_api_token_shown_once(
    app: Flask, client: FlaskClient, anonymous: FlaskClient, machine: Account
) -> None:
    created = create_token(client, machine.email, scopes=["patients:read"])

    assert created.status_code == 201, created.json
    body = created.json
    assert body["user_id"] == str(machine.id)
    assert body["scopes"] == ["patients:read"]
    assert body["revoked_at"] is None
    token = body["token"]
    # It works, for what its scope names and nothing else.
    assert anonymous.get("/api/v1/patients", headers=bearer(token)).status_code == 200
    assert anonymous.get("/api/v1/notifications", headers=bearer(token)).status_code == 403
    me = anonymous.get(ME_URL, headers=bearer(token)).json
    assert (me["role"], me["scopes"], me["token_id"]) == (
        "integration",
        ["patients:read"],
        body["id"],
    )

    # Only its digest is kept.
    with db.sessionmaker(app)() as session:
        row = session.get(ApiToken, uuid.UUID(body["id"]))
        assert row.token_hash == services.digest(token)
        assert token not in row.token_hash


def test_the_token_list_never_shows_a_token(client: FlaskClient, machine: Account) -> None:
    token = create_token(client, machine.email).json["token"]

    listing = client.get(TOKENS_URL)

    assert listing.status_code == 200
    (entry,) = listing.json
    assert "token" not in entry
    assert "token_hash" not in entry
    text = listing.get_data(as_text=True)
    assert token not in text
    assert services.digest(token) not in text
    # Nor the token's signature, its only secret part.
    assert token.rsplit(".", 1)[1] not in text


def test_a_revoked_api_token_is_refused_at_once(
    client: FlaskClient, anonymous: FlaskClient, machine: Account
) -> None:
    created = create_token(client, machine.email, scopes=["patients:read"]).json
    assert anonymous.get("/api/v1/patients", headers=bearer(created["token"])).status_code == 200

    revoked = client.delete(f"{TOKENS_URL}/{created['id']}")

    assert revoked.status_code == 204
    assert_unauthorized(anonymous.get("/api/v1/patients", headers=bearer(created["token"])))
    (entry,) = client.get(TOKENS_URL).json
    assert entry["revoked_at"] is not None
    # Revoking again is harmless; an unknown token is not found.
    assert client.delete(f"{TOKENS_URL}/{created['id']}").status_code == 204
    assert client.delete(f"{TOKENS_URL}/{uuid.uuid4()}").status_code == 404


def test_an_expired_api_token_is_refused(
    app: Flask, client: FlaskClient, anonymous: FlaskClient, machine: Account
) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    created = create_token(client, machine.email, scopes=["patients:read"], expires_at=tomorrow)
    assert created.status_code == 201, created.json
    token = created.json["token"]
    assert anonymous.get("/api/v1/patients", headers=bearer(token)).status_code == 200

    # Its row expires (the signed expiry is tomorrow's: the database's word is enough).
    with db.sessionmaker(app).begin() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.id == uuid.UUID(created.json["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    assert_unauthorized(anonymous.get("/api/v1/patients", headers=bearer(token)))


def test_a_disabled_integration_s_tokens_stop(
    app: Flask, client: FlaskClient, anonymous: FlaskClient, machine: Account
) -> None:
    token = create_token(client, machine.email, scopes=["patients:read"]).json["token"]

    with db.sessionmaker(app).begin() as session:
        services.set_active(session, machine.email, False)

    assert_unauthorized(anonymous.get("/api/v1/patients", headers=bearer(token)))


@pytest.mark.parametrize(
    "fields",
    [
        {"email": "nobody@vigil.test"},
        {"scopes": ["everything"]},
        {"scopes": ["patients:read"] * 17},
        {"expires_at": "2000-01-01T00:00:00Z"},
        {"expires_at": "2999-01-01T00:00:00"},  # no zone
        {"name": ""},
        {"name": "x" * 101},
        {"user_id": str(uuid.uuid4())},
    ],
    ids=[
        "unknown-account",
        "unknown-scope",
        "too-many-scopes",
        "expired",
        "naive-expiry",
        "empty-name",
        "long-name",
        "extra-field",
    ],
)
def test_bad_token_requests_are_refused(
    client: FlaskClient, machine: Account, fields: dict[str, Any]
) -> None:
    response = client.post(TOKENS_URL, json={"email": machine.email, "name": "gateway", **fields})

    assert response.status_code == 422, response.json
    assert set(response.json) == ERROR_KEYS
    assert client.get(TOKENS_URL).json == []


def test_no_token_for_a_disabled_account(app: Flask, client: FlaskClient, machine: Account) -> None:
    with db.sessionmaker(app).begin() as session:
        services.set_active(session, machine.email, False)
    assert create_token(client, machine.email).status_code == 422


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.VIEWER, Role.INTEGRATION])
def test_only_admins_manage_api_tokens(
    app: Flask,
    client: FlaskClient,
    client_as: Callable,
    make_account: Callable[..., Account],
    machine: Account,
    role: Role,
) -> None:
    existing = create_token(client, machine.email).json
    other = client_as(make_account(role))

    assert other.get(TOKENS_URL).status_code == 403
    assert create_token(other, machine.email).status_code == 403
    assert other.delete(f"{TOKENS_URL}/{existing['id']}").status_code == 403

    with db.sessionmaker(app)() as session:
        rows = session.scalars(select(ApiToken)).all()
        assert [(str(row.id), row.revoked_at) for row in rows] == [(existing["id"], None)]


def test_an_integration_cannot_mint_itself_a_wider_token(
    app: Flask, anonymous: FlaskClient, machine: Account
) -> None:
    with db.sessionmaker(app).begin() as session:
        user = session.get(User, machine.id)
        _row, token = services.create_api_token(
            session, app.extensions["vigil.token_signer"], user, "narrow", [Scope.PATIENTS_READ]
        )
    caller = client_for(app, token)

    response = create_token(caller, machine.email, scopes=[scope.value for scope in Scope])

    assert response.status_code == 403


# -- every request checks its credentials afresh -------------------------------------------------
# The signature check is remembered for a token's exact text (shared/auth/tokens.py); the
# account and the token's row are read on every request all the same.


def test_an_api_token_just_used_is_refused_on_the_next_request_once_revoked(
    app: Flask, client: FlaskClient, anonymous: FlaskClient, machine: Account
) -> None:
    created = create_token(client, machine.email, scopes=["patients:read"]).json
    read = functools.partial(anonymous.get, "/api/v1/patients", headers=bearer(created["token"]))
    assert read().status_code == 200
    assert read().status_code == 200

    # Revoked by another process, without telling this one.
    with db.sessionmaker(app).begin() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.id == uuid.UUID(created["id"]))
            .values(revoked_at=datetime.now(UTC))
        )

    assert_unauthorized(read())


def test_an_access_token_just_used_is_refused_on_the_next_request_once_disabled(
    app: Flask, client_as: Callable, make_account: Callable[..., Account]
) -> None:
    clinician = make_account(Role.CLINICIAN)
    client = client_as(clinician)
    assert client.get("/api/v1/patients").status_code == 200

    set_user(app, clinician, active=False)

    assert_unauthorized(client.get("/api/v1/patients"))


def test_ward_changes_show_on_the_next_request(
    app: Flask, client_as: Callable, make_account: Callable[..., Account]
) -> None:
    clinician = make_account(Role.CLINICIAN, wards=["ICU North"])
    client = client_as(clinician)
    assert [ward["name"] for ward in client.get(ME_URL).json["wards"]] == ["ICU North"]

    with db.sessionmaker(app).begin() as session:
        services.join_ward(session, session.get(User, clinician.id), "ICU South")

    wards = client.get(ME_URL).json["wards"]
    assert sorted(ward["name"] for ward in wards) == ["ICU North", "ICU South"]


def test_an_api_token_s_last_use_is_written_at_most_every_interval(
    app: Flask, client: FlaskClient, anonymous: FlaskClient, machine: Account
) -> None:
    created = create_token(client, machine.email, scopes=["patients:read"]).json
    token_id = uuid.UUID(created["id"])

    def last_used() -> datetime | None:
        with db.sessionmaker(app)() as session:
            return session.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token_id))

    assert last_used() is None
    assert anonymous.get("/api/v1/patients", headers=bearer(created["token"])).status_code == 200
    first = last_used()
    assert first is not None
    assert anonymous.get("/api/v1/patients", headers=bearer(created["token"])).status_code == 200
    assert last_used() == first

    # Older than the interval: the next use writes it again.
    stale = first - services.TOUCH_INTERVAL - timedelta(seconds=1)
    with db.sessionmaker(app).begin() as session:
        session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=stale))
    assert anonymous.get("/api/v1/patients", headers=bearer(created["token"])).status_code == 200
    assert last_used() > first


def test_a_token_whose_signature_was_checked_still_expires(wait_for: Callable) -> None:
    verifier = signer()
    claims = TokenClaims(
        uuid.uuid4(),
        uuid.uuid4(),
        Role.VIEWER.value,
        TokenKind.ACCESS,
        expires_at=datetime.now(UTC) + timedelta(seconds=2),
    )
    token = verifier.sign(claims)
    assert verifier.verify(token).token_id == claims.token_id

    def refused() -> bool:
        try:
            verifier.verify(token)
        except InvalidTokenError:
            return True
        return False

    # Expired at its `exp`, although its signature was checked (and remembered) before.
    assert wait_for(refused, timeout=10)


def test_a_token_refused_once_is_refused_again(make_account: Callable[..., Account]) -> None:
    account = make_account(Role.VIEWER)
    verifier = signer()
    genuine = verifier.verify(account.token)
    # The same claims, and the signature of another token: refused however often it comes.
    header, payload, _signature = account.token.split(".")
    other = token_for(Role.VIEWER).split(".")[2]
    forged = f"{header}.{payload}.{other}"
    for _attempt in range(3):
        with pytest.raises(InvalidTokenError):
            verifier.verify(forged)
    assert verifier.verify(account.token) == genuine
