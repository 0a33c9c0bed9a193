"""Password sign-in with its audit record, for the token endpoint and the login page alike."""

from __future__ import annotations

from flask import request
from flask import session as cookie
from sqlalchemy.orm import Session

from monitor_app.audit.recorder import request_origin
from monitor_app.auth import services
from monitor_app.auth.authenticate import SESSION_SECRET, auth_settings
from shared.audit import AuditAction, Outcome, record
from shared.identity import User, UserSession


def sign_in(session: Session, username: str, password: str, via: str) -> User:
    """The account the password opens, recording the attempt (and a lockout) in `session`;
    raises services.SignInError. The caller commits either way."""
    origin = request_origin()
    try:
        user = services.check_password(session, username, password, auth_settings())
    except services.SignInError as exc:
        # The typed name is kept only when it is an account's: an unknown "name" is often a
        # password typed into the wrong field.
        detail = {"reason": exc.failure.value, "via": via}
        action = AuditAction.LOCKOUT if exc.newly_locked else AuditAction.SIGN_IN_FAILED
        record(session, action, Outcome.DENIED, user=exc.user, detail=detail, **origin)
        raise
    record(session, AuditAction.SIGN_IN, user=user, detail={"via": via}, **origin)
    return user


def begin_session(session: Session, user: User) -> UserSession:
    """A dashboard session for `user` in a cookie emptied first: the session gets a new id at
    every sign-in, so one an attacker planted beforehand is worthless."""
    cookie.clear()
    row, secret = services.start_session(
        session, user, request.remote_addr, request.user_agent.string
    )
    cookie[SESSION_SECRET] = secret
    return row


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
