"""Who the caller of a monitor_app request is: a bearer token, or the dashboard's session.

Checked against the database on every request, so a revoked token or a disabled account
stops working at once, not when its token expires.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, current_app, request, session
from flask_wtf.csrf import CSRFProtect

from monitor_app.auth.principals import principal_for_session, principal_for_token
from monitor_app.auth.revocation_sync import RevocationSync
from monitor_app.auth.services import AuthSettings, session_holds, token_holds
from shared.auth.policy import bearer_token, register_access, unauthorized
from shared.auth.principal import Principal
from shared.auth.revocation import Revocations
from shared.auth.tokens import InvalidTokenError, TokenSigner, load_key_setting, load_private_key
from shared.config import RedisRole, redis_url
from shared.db import db
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


def still_signed_in(principal: Principal) -> bool:
    """Whether the credentials this (long-lived) request came with still hold: its session
    not ended or idle, its token not revoked, the account active. Touches nothing, so a
    stream alone does not keep a session from going idle."""
    with db.sessionmaker().begin() as auth_session:
        if principal.session_id is not None:
            return session_holds(auth_session, principal.session_id, auth_settings())
        token = bearer_token()
        if token is None:
            return False
        try:
            claims = token_signer().verify(token)
        except InvalidTokenError:
            return False
        return claims.token_id == principal.token_id and token_holds(auth_session, claims)


def _derived_secret(key: Ed25519PrivateKey) -> bytes:
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    info = hashlib.sha256(b"vigil session cookies").digest()
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=info).derive(raw)
