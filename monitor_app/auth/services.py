"""Accounts, password sign-in with lockout, API tokens and dashboard sessions.

Functions take the caller's session and never commit; the route or command commits.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from monitor_app.auth.passwords import (
    check_password_strength,
    hash_password,
    needs_rehash,
    verify_password,
)
from shared.auth.roles import Role, Scope
from shared.auth.tokens import TokenClaims, TokenKind, TokenSigner
from shared.db import utcnow
from shared.identity import ApiToken, User, UserSession, Ward, WardMember

# last_used_at / last_seen_at are written at most this often, not on every request.
TOUCH_INTERVAL = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class AuthSettings:
    access_token_lifetime: timedelta
    session_idle: timedelta
    max_failures: int
    lockout: timedelta

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> AuthSettings:
        return cls(
            access_token_lifetime=timedelta(seconds=config["ACCESS_TOKEN_SECONDS"]),
            session_idle=timedelta(seconds=config["SESSION_IDLE_SECONDS"]),
            max_failures=config["LOGIN_MAX_FAILURES"],
            lockout=timedelta(seconds=config["LOGIN_LOCKOUT_SECONDS"]),
        )


class SignInFailure(StrEnum):
    UNKNOWN_USER = "unknown_user"
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 (a reason, not a password)
    DISABLED = "disabled"
    LOCKED = "locked"
    MACHINE_ACCOUNT = "machine_account"


class SignInError(Exception):
    """The password sign-in was refused; `user` is the account, when there is one."""

    def __init__(
        self, failure: SignInFailure, user: User | None = None, newly_locked: bool = False
    ) -> None:
        super().__init__(failure.value)
        self.failure = failure
        self.user = user
        # This failure is the one that locked the account.
        self.newly_locked = newly_locked


class AccountError(ValueError):
    """A command on accounts that cannot be done (duplicate address, unknown user...)."""


def digest(secret: str) -> str:
    """How a token or session secret is stored: a SHA-256 hex digest, never the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_email(email: str) -> str:
    return email.strip().lower()


# -- accounts -------------------------------------------------------------------------------
def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalise_email(email)))


def create_user(
    session: Session,
    email: str,
    role: Role,
    password: str | None = None,
    wards: Iterable[str] = (),
) -> User:
    """A new account; raises AccountError if the address is taken or the password weak."""
    email = normalise_email(email)
    if not email or "@" not in email:
        raise AccountError(f"not an email address: {email!r}")
    if find_user(session, email) is not None:
        raise AccountError(f"an account for {email} already exists")
    if password is not None:
        try:
            check_password_strength(password)
        except ValueError as exc:
            raise AccountError(str(exc)) from None
    user = User(
        email=email,
        role=role.value,
        password_hash=None if password is None else hash_password(password),
        active=True,
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    for ward_name in wards:
        join_ward(session, user, ward_name)
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


def set_active(session: Session, email: str, active: bool) -> User:
    """Enable or disable an account; a disabled one's sessions and tokens stop at once."""
    user = find_user(session, email)
    if user is None:
        raise AccountError(f"no account for {normalise_email(email)}")
    user.active = active
    if not active:
        session.execute(
            update(UserSession)
            .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
            .values(ended_at=utcnow())
        )
    return user


def ward_by_name(session: Session, name: str, create: bool = False) -> Ward | None:
    ward = session.scalar(select(Ward).where(Ward.name == name))
    if ward is None and create:
        ward = Ward(name=name)
        session.add(ward)
        session.flush()
    return ward


def join_ward(session: Session, user: User, ward_name: str) -> Ward:
    ward = ward_by_name(session, ward_name, create=True)
    assert ward is not None
    if session.get(WardMember, (ward.id, user.id)) is None:
        session.add(WardMember(ward_id=ward.id, user_id=user.id))
        session.flush()
    return ward


# -- password sign-in -----------------------------------------------------------------------
def check_password(session: Session, email: str, password: str, settings: AuthSettings) -> User:
    """The account `password` opens, or SignInError. Records failures and locks the account
    after `max_failures` in a row; the caller commits either way."""
    user = find_user(session, email)
    now = utcnow()
    # One argon2 verification whatever happens, so timing tells nothing.
    matches = verify_password(user.password_hash if user else None, password)
    if user is None:
        raise SignInError(SignInFailure.UNKNOWN_USER)
    if user.locked_until is not None and user.locked_until > now:
        raise SignInError(SignInFailure.LOCKED, user)
    if not matches:
        user.failed_logins += 1
        if user.failed_logins >= settings.max_failures:
            user.failed_logins = 0
            user.locked_until = now + settings.lockout
            raise SignInError(SignInFailure.LOCKED, user, newly_locked=True)
        raise SignInError(SignInFailure.WRONG_PASSWORD, user)
    if not user.active:
        raise SignInError(SignInFailure.DISABLED, user)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if needs_rehash(user.password_hash or ""):
        user.password_hash = hash_password(password)
    return user


def sso_user(session: Session, subject: str, email: str, role: Role, email_verified: bool) -> User:
    """The account of an identity the hospital's provider vouched for, made on first sign-in;
    its role follows the provider's on every sign-in. Raises SignInError if it is disabled,
    AccountError if the address belongs to another account that the provider has not shown
    to be this person's (an unverified address must not take over a local account)."""
    user = session.scalar(select(User).where(User.oidc_subject == subject))
    if user is None:
        user = find_user(session, email)
        if user is not None and (user.oidc_subject is not None or not email_verified):
            raise AccountError(f"{normalise_email(email)} belongs to another account")
    if user is None:
        user = create_user(session, email, role)
    if not user.active:
        raise SignInError(SignInFailure.DISABLED, user)
    user.oidc_subject = subject
    user.role = role.value
    user.last_login_at = utcnow()
    return user


def set_password(user: User, password: str) -> None:
    try:
        check_password_strength(password)
    except ValueError as exc:
        raise AccountError(str(exc)) from None
    user.password_hash = hash_password(password)


# -- tokens ---------------------------------------------------------------------------------
def create_api_token(
    session: Session,
    signer: TokenSigner,
    user: User,
    name: str,
    scopes: Iterable[Scope] = (),
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """A long-lived token for `user`. The token itself is returned once and never stored."""
    token_id = uuid.uuid4()
    scope_names = sorted(scope.value for scope in scopes)
    token = signer.sign(
        TokenClaims(
            token_id=token_id,
            user_id=user.id,
            role=user.role,
            kind=TokenKind.API,
            scopes=frozenset(scope_names),
            expires_at=expires_at,
        )
    )
    row = ApiToken(
        id=token_id,
        user_id=user.id,
        name=name,
        token_hash=digest(token),
        scopes=scope_names,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return row, token


def revoke_api_token(session: Session, token_id: uuid.UUID) -> ApiToken | None:
    """Mark the token revoked (idempotent); None if there is no such token."""
    row = session.get(ApiToken, token_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def list_api_tokens(session: Session, user_id: uuid.UUID | None = None) -> list[ApiToken]:
    query = select(ApiToken).order_by(ApiToken.created_at)
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    return list(session.scalars(query))


# -- dashboard sessions ---------------------------------------------------------------------
def start_session(
    session: Session, user: User, address: str | None, user_agent: str | None
) -> tuple[UserSession, str]:
    """A new sign-in session; the returned secret goes into the browser's cookie."""
    secret = secrets.token_urlsafe(32)
    row = UserSession(
        secret_hash=digest(secret),
        user_id=user.id,
        address=(address or "")[:64] or None,
        user_agent=(user_agent or "")[:300] or None,
    )
    session.add(row)
    session.flush()
    return row, secret


def find_session(session: Session, secret: str) -> UserSession | None:
    return session.scalar(select(UserSession).where(UserSession.secret_hash == digest(secret)))


def end_session(session: Session, secret: str) -> UserSession | None:
    row = find_session(session, secret)
    if row is not None and row.ended_at is None:
        row.ended_at = utcnow()
    return row


def sessions_holding(
    session: Session, session_ids: Iterable[uuid.UUID], settings: AuthSettings
) -> set[uuid.UUID]:
    """Which of these dashboard sessions still sign their users in: not ended, not idle,
    the account active. One query for them all, and it writes nothing (the live streams
    re-check with it)."""
    ids = set(session_ids)
    if not ids:
        return set()
    rows = session.execute(
        select(UserSession.id, UserSession.ended_at, UserSession.last_seen_at, User.active)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.id.in_(ids))
    )
    now = utcnow()
    return {
        row.id
        for row in rows
        if row.ended_at is None and row.active and now - row.last_seen_at <= settings.session_idle
    }


def tokens_holding(session: Session, tokens: Iterable[TokenClaims]) -> set[TokenClaims]:
    """Those of these verified tokens whose account is active and, for an API token, that
    are not revoked or expired. A query for each kind, and they write nothing."""
    tokens = list(tokens)
    access = [claims for claims in tokens if claims.kind is TokenKind.ACCESS]
    api = [claims for claims in tokens if claims.kind is not TokenKind.ACCESS]
    holding: set[TokenClaims] = set()
    if access:
        users = {claims.user_id for claims in access}
        active = set(session.scalars(select(User.id).where(User.id.in_(users), User.active)))
        holding.update(claims for claims in access if claims.user_id in active)
    if api:
        now = utcnow()
        rows = session.execute(
            select(ApiToken.id, ApiToken.user_id)
            .join(User, User.id == ApiToken.user_id)
            .where(
                ApiToken.id.in_({claims.token_id for claims in api}),
                ApiToken.revoked_at.is_(None),
                User.active,
            )
            .where((ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now))
        )
        valid = {(row.id, row.user_id) for row in rows}
        holding.update(claims for claims in api if (claims.token_id, claims.user_id) in valid)
    return holding
