"""Who the caller of a monitor_app request is: a bearer token, or the dashboard's session.

Checked against the database on every request, so a revoked token or a disabled account
stops working at once, not when its token expires.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, current_app, request, session
from flask_wtf.csrf import CSRFProtect

from monitor_app.auth.principals import principal_for_session, principal_for_token
from monitor_app.auth.revocation_sync import RevocationSync
from monitor_app.auth.services import AuthSettings, sessions_holding, tokens_holding
from shared.auth.policy import bearer_token, register_access, unauthorized
from shared.auth.principal import Principal
from shared.auth.revocation import Revocations
from shared.auth.tokens import (
    InvalidTokenError,
    TokenClaims,
    TokenSigner,
    load_key_setting,
    load_private_key,
)
from shared.config import RedisRole, redis_url
from shared.db import db, utcnow
from shared.lifecycle import register_background
from shared.web_security import refuse_cross_site

# The key, in Flask's signed session cookie, of the dashboard session's secret.
SESSION_SECRET = "sid"  # noqa: S105 (a key name, not a secret)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Where an anonymous browser asking for a page is sent (monitor_app.auth.pages).
LOGIN_ENDPOINT = "login.page"

csrf = CSRFProtect()


def init_auth(app: Flask) -> None:
    """Load the signing key (a missing key stops the app here), set up cookies and CSRF, and
    check every request's access."""
    key = load_key_setting(app.config, "AUTH_PRIVATE_KEY_FILE", load_private_key)
    app.extensions["vigil.token_signer"] = TokenSigner(key)
    app.extensions["vigil.auth_settings"] = AuthSettings.from_config(app.config)
    # One secret to keep: the cookie-signing key is derived from the token signing key.
    # (Flask's defaults hold SECRET_KEY = None, so setdefault would keep that.)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _derived_secret(key)
    app.config.update(
        SESSION_COOKIE_NAME="vigil_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=app.config["SESSION_COOKIE_SECURE"],
        # Checked only for requests signed in by cookie (and the login form), below.
        WTF_CSRF_CHECK_DEFAULT=False,
        # The token lives as long as the session; the session has its own idle timeout.
        WTF_CSRF_TIME_LIMIT=None,
    )
    csrf.init_app(app)
    app.extensions["vigil.revocations"] = Revocations(
        redis_url(app.config, RedisRole.EVENTS), app.config["REDIS_NAMESPACE"]
    )
    register_background(app, "revocations", RevocationSync(app))
    register_access(app, authenticate, login_endpoint=LOGIN_ENDPOINT)


def token_signer() -> TokenSigner:
    return current_app.extensions["vigil.token_signer"]


def auth_settings() -> AuthSettings:
    return current_app.extensions["vigil.auth_settings"]


def authenticate() -> Principal | None:
    """The caller, None without credentials; Unauthorized for credentials that do not hold.

    Runs in a transaction of its own (it records when a token or session was last used),
    separate from the view's, on a plain connection: no ORM session is needed for it.
    """
    token = bearer_token()
    if token is not None:
        try:
            claims = token_signer().verify(token)
        except InvalidTokenError:
            raise unauthorized("The token is invalid or expired.") from None
        with db.engine().begin() as connection:
            principal = principal_for_token(connection, claims, token)
        if principal is None:
            raise unauthorized("The token was revoked, or its account is disabled.")
        return principal
    secret = session.get(SESSION_SECRET)
    if not isinstance(secret, str):
        return None
    with db.engine().begin() as connection:
        principal = principal_for_session(connection, secret, auth_settings())
    if principal is None:
        session.pop(SESSION_SECRET, None)
        return None
    if request.method not in SAFE_METHODS:
        protect_cookie_change()
    return principal


def protect_cookie_change() -> None:
    """Refuse a change that rides the session cookie unless it comes from Vigil's own pages
    and carries the session's CSRF token, whatever its Content-Type.

    A browser sends the cookie whoever's page asks, and a form or a text/plain fetch from
    another site needs no CORS preflight: the token is checked, not the body's type. The
    browser's Sec-Fetch-Site and Origin headers refuse other sites (a sibling subdomain is
    "same-site" to SameSite=Lax, so the cookie alone would come along) even with a token.
    """
    refuse_cross_site()
    csrf.protect()


@dataclass(frozen=True, slots=True)
class Credential:
    """What a long-lived request (a live stream) was signed in with: a dashboard session,
    or a verified token's claims."""

    session_id: uuid.UUID | None = None
    claims: TokenClaims | None = None


def request_credential(principal: Principal) -> Credential | None:
    """The credential this request was signed in with, to re-check while it lasts; None if
    its token no longer verifies or is not the principal's."""
    if principal.session_id is not None:
        return Credential(session_id=principal.session_id)
    token = bearer_token()
    if token is None:
        return None
    try:
        claims = token_signer().verify(token)
    except InvalidTokenError:
        return None
    return Credential(claims=claims) if claims.token_id == principal.token_id else None


def credentials_holding(credentials: Collection[Credential]) -> set[Credential]:
    """Which of these still hold: the session not ended or idle, the token not expired or
    revoked, the account active. A query for each kind of credential, however many; touches
    nothing, so a stream alone does not keep a session from going idle."""
    session_ids = {c.session_id for c in credentials if c.session_id is not None}
    tokens = [c.claims for c in credentials if c.claims is not None]
    with db.sessionmaker().begin() as auth_session:
        sessions = sessions_holding(auth_session, session_ids, auth_settings())
        holding_tokens = tokens_holding(auth_session, tokens)
    now = utcnow()
    return {
        credential
        for credential in credentials
        if credential.session_id in sessions
        or (
            credential.claims is not None
            and credential.claims in holding_tokens
            and (credential.claims.expires_at is None or credential.claims.expires_at > now)
        )
    }


def _derived_secret(key: Ed25519PrivateKey) -> bytes:
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    info = hashlib.sha256(b"vigil session cookies").digest()
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=info).derive(raw)
