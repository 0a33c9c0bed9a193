"""Who may send the analyser a text: the worker's token (analysis:write) or an admin; anyone
else is refused before the text is read, in the shared JSON error body."""

from __future__ import annotations

import uuid

import pytest
from flask import Flask

from shared.auth.revocation import Revocations
from shared.auth.roles import Role, Scope
from shared.auth.tokens import TokenClaims, TokenKind
from shared.config import RedisRole, redis_url
from tests.analyser_app.conftest import worker_client
from tests.auth import TEST_TOKEN_LIFETIME, Account, bearer, client_for, signer, token_for
from tests.forgeries import FORGERIES

ANALYSE = "/api/v1/analyse"
TEXT = {"text": "Ivan Petrov: SpO2 84%, hypoxia"}
ERROR_KEYS = {"code", "status", "message", "errors"}


def assert_unauthorized(response) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert set(response.json) == ERROR_KEYS
    assert response.json["code"] == 401


def test_an_anonymous_text_is_refused_with_a_bearer_challenge(app: Flask) -> None:
    assert_unauthorized(app.test_client().post(ANALYSE, json=TEXT))


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda: token_for(Role.CLINICIAN), id="clinician"),
        pytest.param(lambda: token_for(Role.VIEWER), id="viewer"),
        pytest.param(lambda: token_for(Role.INTEGRATION), id="integration-without-scopes"),
        pytest.param(
            lambda: token_for(Role.INTEGRATION, [Scope.NOTIFICATIONS_WRITE, Scope.PATIENTS_READ]),
            id="integration-with-other-scopes",
        ),
        # A person's role is what counts: a scope grants integrations only.
        pytest.param(
            lambda: token_for(Role.CLINICIAN, [Scope.ANALYSIS_WRITE]), id="scoped-clinician"
        ),
    ],
)
def test_callers_without_the_right_are_forbidden(app: Flask, make_token) -> None:
    response = client_for(app, make_token()).post(ANALYSE, json=TEXT)

    assert response.status_code == 403
    assert set(response.json) == ERROR_KEYS
    assert response.json["code"] == 403


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda: token_for(Role.INTEGRATION, [Scope.ANALYSIS_WRITE]), id="worker"),
        pytest.param(lambda: token_for(Role.ADMIN), id="admin"),
    ],
)
def test_the_worker_and_admins_get_the_analysis(app: Flask, make_token) -> None:
    response = client_for(app, make_token()).post(ANALYSE, json=TEXT)

    assert response.status_code == 200
    assert response.json["category"] == "critical"


def _worker_claims() -> TokenClaims:
    return TokenClaims(
        token_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        role=Role.INTEGRATION.value,
        kind=TokenKind.API,
        scopes=frozenset({Scope.ANALYSIS_WRITE.value}),
    )


@pytest.mark.parametrize("revoke", ["token", "account"])
def test_a_revoked_token_or_disabled_account_is_refused_at_once(app: Flask, revoke: str) -> None:
    claims = _worker_claims()
    client = client_for(app, signer().sign(claims))
    assert client.post(ANALYSE, json=TEXT).status_code == 200
    # Where monitor_app writes them, as the user the check reads them with.
    config = app.config
    revocations = Revocations(redis_url(config, RedisRole.EVENTS), config["REDIS_NAMESPACE"])

    if revoke == "token":
        revocations.revoke_token(claims.token_id)
    else:
        revocations.set_user_disabled(claims.user_id, True)

    assert_unauthorized(client.post(ANALYSE, json=TEXT))


def test_without_redis_no_token_is_honoured(make_app, unreachable_redis) -> None:
    # Nobody answers there: the token may have been revoked, so it is not trusted.
    client = worker_client(make_app(**unreachable_redis))

    response = client.post(ANALYSE, json=TEXT)

    assert response.status_code == 503
    assert set(response.json) == ERROR_KEYS


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
def test_forged_tokens_are_refused(app: Flask, forge) -> None:
    user_id = uuid.uuid4()
    token, _claims = signer().access_token(user_id, Role.ADMIN.value, TEST_TOKEN_LIFETIME)
    account = Account(user_id, "admin@vigil.test", Role.ADMIN, "", token)
    client = app.test_client()
    # The genuine token works, so the forgery alone is what is refused.
    assert client.post(ANALYSE, json=TEXT, headers=bearer(token)).status_code == 200

    assert_unauthorized(client.post(ANALYSE, json=TEXT, headers=bearer(forge(account))))
