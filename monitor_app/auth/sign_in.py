"""Password sign-in with its audit record, for the token endpoint and the login page alike."""

from __future__ import annotations

from sqlalchemy.orm import Session

from monitor_app.audit.recorder import request_origin
from monitor_app.auth import services
from monitor_app.auth.authenticate import auth_settings
from shared.audit import AuditAction, Outcome, record
from shared.identity import User


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
