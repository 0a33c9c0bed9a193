"""`/login` and `/logout`: the dashboard's sign-in form and its cookie session.

The session id changes at every sign-in (a cookie planted beforehand signs nobody in), the
form and the logout carry the CSRF token, and `next` only ever leads back into this site.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from monitor_app.audit.recorder import request_origin
from monitor_app.auth import services
from monitor_app.auth.authenticate import SESSION_SECRET, auth_settings, protect_cookie_change
from monitor_app.auth.passwords import MAX_PASSWORD_LENGTH
from monitor_app.auth.principals import principal_for_session
from monitor_app.auth.sign_in import (
    HOME,
    LOCKED_OUT,
    SIGN_IN_REFUSED,
    begin_session,
    password_sign_in,
    safe_next,
)
from shared.audit import AuditAction, record
from shared.auth.policy import public
from shared.db import db
from shared.identity import MAX_EMAIL_LENGTH, User

bp = Blueprint("login", __name__, template_folder="templates")

# The page holds a fresh CSRF token and takes a password: never cached. (Never framed
# either, like every answer: shared.web_security.)
PAGE_HEADERS = {"Cache-Control": "no-store"}


def _form(
    status: int = 200, error: str | None = None, email: str = "", target: str = HOME
) -> ResponseReturnValue:
    page = render_template("login.html", error=error, email=email, next=target)
    return page, status, PAGE_HEADERS


@bp.get("/login")
@public
def page() -> ResponseReturnValue:
    """The sign-in form; a browser already signed in goes straight on to `next`."""
    target = safe_next(request.args.get("next"))
    secret = session.get(SESSION_SECRET)
    if isinstance(secret, str):
        principal = principal_for_session(db.session.connection(), secret, auth_settings())
        db.session.commit()
        if principal is not None:
            return redirect(target, 303)
        session.pop(SESSION_SECRET, None)
    return _form(target=target)


@bp.post("/login")
@public
def sign_in() -> ResponseReturnValue:
    """Check the email and password; on success a new session, and on to `next`."""
    # Public, so the access check did not ask for the token: a forged sign-in (into the
    # attacker's account) is refused here.
    protect_cookie_change()
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    target = safe_next(request.form.get("next"))
    if not email or len(email) > MAX_EMAIL_LENGTH or len(password) > MAX_PASSWORD_LENGTH:
        return _form(401, SIGN_IN_REFUSED, email[:MAX_EMAIL_LENGTH], target)
    try:
        # A machine account uses its tokens; the dashboard is for people.
        user = password_sign_in(db.session, email, password, via="form", people_only=True)
    except services.SignInError as exc:
        # The failure count (and a lockout) is kept even though the sign-in fails.
        db.session.commit()
        locked = exc.failure is services.SignInFailure.LOCKED
        return _form(401, LOCKED_OUT if locked else SIGN_IN_REFUSED, email, target)
    begin_session(db.session, user)
    db.session.commit()
    return redirect(target, 303)


@bp.post("/logout")
@public
def logout() -> ResponseReturnValue:
    """End the session here and in the browser, then show the login form."""
    # Public, so that signing out works whatever became of the session (an idle one would
    # otherwise be sent to sign in first); the token keeps other sites' forms from doing it.
    protect_cookie_change()
    secret = session.get(SESSION_SECRET)
    if isinstance(secret, str):
        ended = services.end_session(db.session, secret)
        if ended is not None:
            record(
                db.session,
                AuditAction.SIGN_OUT,
                user=db.session.get(User, ended.user_id),
                detail={"via": "form"},
                **request_origin(),
            )
        db.session.commit()
    session.clear()
    return redirect(url_for("login.page"), 303)
