"""Single sign-on: OpenID Connect against the hospital's identity provider (Authlib).

`/login/sso` sends the browser to the provider; `/login/sso/callback` takes the code back,
lets Authlib check the state, the nonce and the ID token's signature, then signs the user in
with a dashboard session. A claim (OIDC_ROLE_CLAIM) says the role, mapped by OIDC_ROLE_MAP.
Off unless OIDC_ISSUER is set; then PUBLIC_URL is required: the callback's address is built
from it, never from the request's Host, which the client chooses.
"""

from __future__ import annotations

from typing import Any

from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, abort, current_app, redirect, request, session, url_for
from werkzeug.wrappers import Response

from monitor_app.audit.recorder import request_origin
from monitor_app.auth import services
from monitor_app.auth.sign_in import begin_session, safe_next
from shared.audit import AuditAction, Outcome, record
from shared.auth.policy import public, unauthorized
from shared.auth.roles import PEOPLE, Role
from shared.config import ConfigError
from shared.db import db

bp = Blueprint("sso", __name__)

PROVIDER = "hospital"
NEXT_KEY = "sso_next"
# The most privileged role wins when the claim lists several.
ROLE_ORDER = (Role.ADMIN, Role.CLINICIAN, Role.VIEWER)


def init_sso(app: Flask) -> None:
    """Register the provider (its metadata is fetched on first use, not here)."""
    issuer = app.config["OIDC_ISSUER"]
    if not issuer:
        return
    if not app.config["PUBLIC_URL"]:
        raise ConfigError("PUBLIC_URL: required with OIDC_ISSUER (the sign-in's callback URL)")
    oauth = OAuth(app)
    oauth.register(
        PROVIDER,
        client_id=app.config["OIDC_CLIENT_ID"],
        client_secret=app.config["OIDC_CLIENT_SECRET"],
        server_metadata_url=f"{issuer.rstrip('/')}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid email profile", "timeout": 10},
    )
    app.extensions["vigil.sso"] = oauth


def sso_enabled() -> bool:
    return "vigil.sso" in current_app.extensions


def _client() -> Any:
    if not sso_enabled():
        abort(404)
    return current_app.extensions["vigil.sso"].create_client(PROVIDER)


def role_from_claims(claims: dict[str, Any]) -> Role | None:
    """The Vigil role the provider's claim grants; None if it grants none."""
    config = current_app.config
    raw = claims.get(config["OIDC_ROLE_CLAIM"])
    values = raw if isinstance(raw, list) else [raw]
    mapping = config["OIDC_ROLE_MAP"]
    granted = set()
    for value in values:
        if not isinstance(value, str):
            continue
        name = mapping.get(value, value if not mapping else None)
        if name in {role.value for role in PEOPLE}:
            granted.add(Role(name))
    return next((role for role in ROLE_ORDER if role in granted), None)


@bp.get("/login/sso")
@public
def start() -> Response:
    """Send the browser to the hospital's identity provider."""
    client = _client()
    session[NEXT_KEY] = safe_next(request.args.get("next"))
    return client.authorize_redirect(callback_url())


@bp.get("/login/sso/callback")
@public
def callback() -> Response:
    """Back from the provider: check what it says and sign the user in."""
    client = _client()
    try:
        token = client.authorize_access_token()
    except (AuthlibBaseError, ValueError, KeyError) as exc:
        _refuse("provider_error", detail=str(exc)[:200])
    claims = token.get("userinfo") or {}
    subject, email = claims.get("sub"), claims.get("email")
    role = role_from_claims(claims)
    if not isinstance(subject, str) or not isinstance(email, str) or role is None:
        _refuse("no_role" if role is None else "claims_missing")
    issuer = current_app.config["OIDC_ISSUER"]
    try:
        user = services.sso_user(
            db.session, f"{issuer} {subject}", email, role, claims.get("email_verified") is True
        )
    except (services.SignInError, services.AccountError) as exc:
        db.session.rollback()
        _refuse("disabled" if isinstance(exc, services.SignInError) else "account_conflict")
    next_page = session.get(NEXT_KEY, "/")
    begin_session(db.session, user)
    record(db.session, AuditAction.SIGN_IN, user=user, detail={"via": "sso"}, **request_origin())
    db.session.commit()
    return redirect(safe_next(next_page))


def callback_url() -> str:
    """Where the provider sends the browser back: under PUBLIC_URL. (A URL built from the
    request's Host would send a sign-in code wherever a forged Host header says.)"""
    return current_app.config["PUBLIC_URL"].rstrip("/") + url_for("sso.callback")


def _refuse(reason: str, detail: str | None = None) -> None:
    """Record the refused sign-in and answer 401."""
    record(
        db.session,
        AuditAction.SIGN_IN_FAILED,
        Outcome.DENIED,
        detail={"reason": reason, "via": "sso", **({"error": detail} if detail else {})},
        **request_origin(),
    )
    db.session.commit()
    raise unauthorized("Single sign-on did not succeed; ask IT if this persists.")
