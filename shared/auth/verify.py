"""Token-only authentication, for the apps without a user table (patient_app, data_app)."""

from __future__ import annotations

from flask import Flask, current_app
from werkzeug.exceptions import ServiceUnavailable

from shared.auth.policy import bearer_token, register_access, unauthorized
from shared.auth.principal import Principal
from shared.auth.revocation import Revocations, RevocationUnavailableError
from shared.auth.roles import Role, known_scopes
from shared.auth.tokens import (
    InvalidTokenError,
    TokenVerifier,
    load_key_setting,
    load_public_key,
)
from shared.config import RedisRole, redis_url


def init_token_auth(app: Flask) -> None:
    """Load the public key (a missing key stops the app here) and check every request."""
    config = app.config
    app.extensions["vigil.token_verifier"] = TokenVerifier(
        load_key_setting(config, "AUTH_PUBLIC_KEY_FILE", load_public_key)
    )
    # Read with the events user, which monitor_app writes them with (shared/redis_acl.py).
    app.extensions["vigil.revocations"] = Revocations(
        redis_url(config, RedisRole.EVENTS), config["REDIS_NAMESPACE"]
    )
    register_access(app, authenticate_token)


def authenticate_token() -> Principal | None:
    """The caller named by a valid bearer token; None without one."""
    token = bearer_token()
    if token is None:
        return None
    verifier: TokenVerifier = current_app.extensions["vigil.token_verifier"]
    try:
        claims = verifier.verify(token)
        role = Role(claims.role)
    except (InvalidTokenError, ValueError):
        raise unauthorized("The token is invalid or expired.") from None
    revocations: Revocations = current_app.extensions["vigil.revocations"]
    try:
        holds = revocations.holds(claims.token_id, claims.user_id)
    except RevocationUnavailableError:
        raise ServiceUnavailable("Cannot check the token's revocation now; retry.") from None
    if not holds:
        raise unauthorized("The token was revoked, or its account is disabled.")
    return Principal(
        user_id=claims.user_id,
        role=role,
        scopes=known_scopes(claims.scopes),
        token_id=claims.token_id,
    )
