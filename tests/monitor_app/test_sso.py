"""Single sign-on through a real OpenID Connect provider process: the browser's round trip
is played by the test (the provider's form, then the callback), the code exchange and the ID
token's checks are Authlib's against the live provider."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from devserver.oidc_provider import OidcProvider
from monitor_app import create_app
from shared.audit import AuditEvent
from shared.auth.roles import Role
from shared.config import ConfigError
from shared.db import db, migrate
from shared.identity import User
from tests.auth import create_account

NURSE = {
    "sub": "nurse-7",
    "email": "nurse7@hospital.test",
    "email_verified": True,
    "vigil_role": ["icu-nurses"],
}
CHIEF = {"sub": "chief-1", "email": "chief@hospital.test", "vigil_role": "it-admins"}
VISITOR = {"sub": "visitor-3", "email": "visitor@hospital.test", "vigil_role": "visitors"}


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    log_file = tmp_path_factory.mktemp("oidc") / "provider.log"
    with OidcProvider(log_file, [NURSE, CHIEF, VISITOR]) as running:
        yield running


@pytest.fixture
def sso_app(
    provider: OidcProvider, sqlite_url: str, redis_settings: dict[str, str]
) -> Iterator[Flask]:
    app = create_app(
        {
            "DATABASE_URL": sqlite_url,
            "TESTING": True,
            "RATELIMIT_ENABLED": False,
            **redis_settings,
            "OIDC_ISSUER": provider.issuer,
            "OIDC_CLIENT_ID": "vigil-test",
            "OIDC_CLIENT_SECRET": "not-a-real-secret",
            "OIDC_ROLE_MAP": {"icu-nurses": "clinician", "it-admins": "admin"},
            # The test client's own address.
            "PUBLIC_URL": "http://localhost",
        }
    )
    migrate(db.engine(app))
    yield app
    db.engine(app).dispose()


def sign_in(client: FlaskClient, subject: str, next_page: str = "/") -> object:
    """Play the browser: to the provider, pick `subject` on its form, back to Vigil."""
    start = client.get("/login/sso", query_string={"next": next_page})
    assert start.status_code == 302
    authorize_url = start.headers["Location"]
    chosen = httpx.post(authorize_url, data={"sub": subject}, follow_redirects=False)
    assert chosen.status_code == 302, chosen.text
    back = urllib.parse.urlsplit(chosen.headers["Location"])
    return client.get(back.path, query_string=back.query)


def test_the_callback_url_is_the_public_url_whatever_the_host(sso_app: Flask) -> None:
    start = sso_app.test_client().get("/login/sso", headers={"Host": "evil.example"})

    assert start.status_code == 302
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(start.headers["Location"]).query)
    assert query["redirect_uri"] == ["http://localhost/login/sso/callback"]


def test_single_sign_on_needs_the_public_url(sqlite_url: str) -> None:
    settings = {"DATABASE_URL": sqlite_url, "TESTING": True, "OIDC_ISSUER": "https://idp.test"}

    with pytest.raises(ConfigError, match="PUBLIC_URL"):
        create_app(settings)


def test_a_nurse_signs_in_through_the_provider(sso_app: Flask) -> None:
    client = sso_app.test_client()
    answer = sign_in(client, NURSE["sub"], next_page="/docs")
    assert answer.status_code == 302 and answer.headers["Location"] == "/docs"
    me = client.get("/api/v1/auth/me")
    assert me.status_code == 200
    assert (me.json["email"], me.json["role"]) == (NURSE["email"], "clinician")
    with db.sessionmaker(sso_app)() as session:
        user = session.scalar(select(User).where(User.email == NURSE["email"]))
        assert user.oidc_subject == f"{sso_app.config['OIDC_ISSUER']} {NURSE['sub']}"
        assert user.password_hash is None
        sign_ins = session.scalars(select(AuditEvent).where(AuditEvent.action == "auth.sign_in"))
        assert [(e.user_id, e.detail) for e in sign_ins] == [(user.id, {"via": "sso"})]


def test_the_role_follows_the_provider_at_each_sign_in(sso_app: Flask) -> None:
    sign_in(sso_app.test_client(), CHIEF["sub"])
    with db.sessionmaker(sso_app).begin() as session:
        session.scalar(select(User).where(User.email == CHIEF["email"])).role = "viewer"
    client = sso_app.test_client()
    sign_in(client, CHIEF["sub"])
    assert client.get("/api/v1/auth/me").json["role"] == "admin"


def test_a_claim_that_grants_no_role_signs_no_one_in(sso_app: Flask) -> None:
    client = sso_app.test_client()
    answer = sign_in(client, VISITOR["sub"])
    assert answer.status_code == 401
    assert client.get("/api/v1/auth/me").status_code == 401
    with db.sessionmaker(sso_app)() as session:
        assert session.scalar(select(User).where(User.email == VISITOR["email"])) is None
        refused = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "auth.sign_in_failed")
        ).all()
        assert [(e.action, e.outcome, e.detail["reason"]) for e in refused] == [
            ("auth.sign_in_failed", "denied", "no_role"),
        ]


def test_a_forged_callback_is_refused(sso_app: Flask) -> None:
    client = sso_app.test_client()
    client.get("/login/sso")
    forged = client.get("/login/sso/callback", query_string={"code": "made-up", "state": "x"})
    assert forged.status_code == 401
    assert client.get("/api/v1/auth/me").status_code == 401


def test_a_callback_without_a_started_sign_in_is_refused(sso_app: Flask) -> None:
    answer = sso_app.test_client().get("/login/sso/callback", query_string={"code": "c"})
    assert answer.status_code == 401


def test_an_unverified_address_does_not_take_over_a_local_account(sso_app: Flask) -> None:
    local = create_account(db.sessionmaker(sso_app), Role.ADMIN, email=CHIEF["email"])
    client = sso_app.test_client()
    assert sign_in(client, CHIEF["sub"]).status_code == 401
    assert client.get("/api/v1/auth/me").status_code == 401
    assert local.email == CHIEF["email"]


def test_next_never_leaves_the_site(sso_app: Flask) -> None:
    answer = sign_in(sso_app.test_client(), NURSE["sub"], next_page="//evil.example/x")
    assert answer.headers["Location"] == "/"


def test_without_an_issuer_single_sign_on_is_off(client: FlaskClient) -> None:
    assert client.get("/login/sso").status_code == 404
