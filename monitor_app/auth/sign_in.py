"""Password sign-in with its audit record, for the token endpoint and the login page alike."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import request
from flask import session as cookie
from sqlalchemy.orm import Session

from monitor_app.audit.recorder import request_origin
from monitor_app.auth import services
from monitor_app.auth.authenticate import SESSION_SECRET, auth_settings
from shared.audit import AuditAction, Outcome, record
from shared.auth.roles import PEOPLE, Role
from shared.identity import User, UserSession

HOME = "/"
# The same words for the form and the token endpoint: nothing tells which part was wrong.
SIGN_IN_REFUSED = "Wrong email or password."
LOCKED_OUT = "Too many failed sign-ins: try again later."


def password_sign_in(
    session: Session, username: str, password: str, via: str, people_only: bool = False
) -> User:
    """The account the password opens, recording the attempt (and a lockout) in `session`;
    raises services.SignInError. `people_only` refuses machine accounts (the dashboard's
    form: integrations use tokens). The caller commits either way."""
    origin = request_origin()
    try:
        user = services.check_password(session, username, password, auth_settings())
        if people_only and Role(user.role) not in PEOPLE:
            raise services.SignInError(services.SignInFailure.MACHINE_ACCOUNT, user)
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
    every sign-in, so one an attacker planted beforehand is worthless. A session the cookie
    held before ends."""
    previous = cookie.get(SESSION_SECRET)
    if isinstance(previous, str):
        services.end_session(session, previous)
    # Nothing of the cookie from before survives sign-in, its CSRF token neither.
    cookie.clear()
    row, secret = services.start_session(
        session, user, request.remote_addr, request.user_agent.string
    )
    cookie[SESSION_SECRET] = secret
    return row


def safe_next(raw: str | None) -> str:
    """`raw` if it is a path on this site, else the dashboard: never an open redirect."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return HOME
    # Browsers drop tabs and newlines from URLs ("/\t/evil.example" is "//evil.example").
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in raw):
        return HOME
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return HOME
    return raw
