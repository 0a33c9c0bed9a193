"""The caller of each request, from a verified bearer token or a dashboard session's secret.

This runs before every request, so each lookup is one statement that reads only the columns
its checks need, as plain rows on the caller's Core connection: ORM loads of the account, the
token row and the ward memberships were a quarter of a read's CPU time. Nothing is cached: a
revoked token, a disabled account, a role change or a sign-out holds from the next request.
The statements are built once; SQLAlchemy's compiled cache then serves each execution.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, Row, bindparam, select, update

from monitor_app.auth.services import TOUCH_INTERVAL, AuthSettings, digest
from shared.auth.principal import Principal
from shared.auth.roles import Role, known_scopes
from shared.auth.tokens import TokenClaims, TokenKind
from shared.db import utcnow
from shared.identity import ApiToken, User, UserSession, WardMember

# What a Principal shows of the account, one row per ward it belongs to (or one, ward None).
_ACCOUNT = (User.email, User.role, User.active, WardMember.ward_id)
_WITH_WARDS = (WardMember, WardMember.user_id == User.id)

ACCESS_TOKEN_ACCOUNT = (
    select(*_ACCOUNT).outerjoin(*_WITH_WARDS).where(User.id == bindparam("user_id"))
)
# The token must be the account's own: the join says so, as the token's `sub` does.
API_TOKEN_ACCOUNT = (
    select(
        *_ACCOUNT,
        ApiToken.token_hash,
        ApiToken.scopes,
        ApiToken.revoked_at,
        ApiToken.expires_at,
        ApiToken.last_used_at,
    )
    .join(ApiToken, ApiToken.user_id == User.id)
    .outerjoin(*_WITH_WARDS)
    .where(User.id == bindparam("user_id"), ApiToken.id == bindparam("token_id"))
)
SESSION_ACCOUNT = (
    select(
        *_ACCOUNT,
        UserSession.id.label("session_id"),
        UserSession.user_id,
        UserSession.ended_at,
        UserSession.last_seen_at,
    )
    .join(User, User.id == UserSession.user_id)
    .outerjoin(*_WITH_WARDS)
    .where(UserSession.secret_hash == bindparam("secret_hash"))
)
TOUCH_TOKEN = (
    update(ApiToken)
    .where(ApiToken.id == bindparam("token_id"))
    .values(last_used_at=bindparam("at"))
)
TOUCH_SESSION = (
    update(UserSession)
    .where(UserSession.id == bindparam("session_id"))
    .values(last_seen_at=bindparam("at"))
)
END_SESSION = (
    update(UserSession)
    .where(UserSession.id == bindparam("session_id"))
    .values(ended_at=bindparam("at"))
)


def principal_for_token(
    connection: Connection, claims: TokenClaims, token: str
) -> Principal | None:
    """The caller a verified token names, if its account is active and, for an API token,
    the token is on record and not revoked or expired. None otherwise."""
    if claims.kind is TokenKind.ACCESS:
        rows = connection.execute(ACCESS_TOKEN_ACCOUNT, {"user_id": claims.user_id}).all()
        if not rows or not rows[0].active:
            return None
        return _principal(claims.user_id, rows, token_id=claims.token_id)
    rows = connection.execute(
        API_TOKEN_ACCOUNT, {"user_id": claims.user_id, "token_id": claims.token_id}
    ).all()
    now = utcnow()
    if not rows:
        return None
    row = rows[0]
    if (
        not row.active
        or row.revoked_at is not None
        or (row.expires_at is not None and row.expires_at <= now)
        or not secrets.compare_digest(row.token_hash, digest(token))
    ):
        return None
    if _stale(row.last_used_at, now, TOUCH_INTERVAL):
        connection.execute(TOUCH_TOKEN, {"token_id": claims.token_id, "at": now})
    return _principal(claims.user_id, rows, token_id=claims.token_id, scopes=row.scopes)


def principal_for_session(
    connection: Connection, secret: str, settings: AuthSettings, touch: bool = True
) -> Principal | None:
    """The user a session cookie signs in, unless the session ended, went idle or the
    account was disabled. An idle session is ended here."""
    rows = connection.execute(SESSION_ACCOUNT, {"secret_hash": digest(secret)}).all()
    if not rows or rows[0].ended_at is not None:
        return None
    row, now = rows[0], utcnow()
    if now - row.last_seen_at > settings.session_idle:
        connection.execute(END_SESSION, {"session_id": row.session_id, "at": now})
        return None
    if not row.active:
        return None
    if touch and _stale(row.last_seen_at, now, min(TOUCH_INTERVAL, settings.session_idle / 10)):
        connection.execute(TOUCH_SESSION, {"session_id": row.session_id, "at": now})
    return _principal(row.user_id, rows, session_id=row.session_id)


def _stale(last: datetime | None, now: datetime, interval: timedelta) -> bool:
    """Whether a last-used time is old enough to write again (not on every request)."""
    return last is None or now - last > interval


def _principal(
    user_id: uuid.UUID,
    rows: Sequence[Row],
    *,
    token_id: uuid.UUID | None = None,
    scopes: Iterable[str] = (),
    session_id: uuid.UUID | None = None,
) -> Principal:
    """The caller as the access checks see them; the role is the account's current one."""
    return Principal(
        user_id=user_id,
        role=Role(rows[0].role),
        email=rows[0].email,
        scopes=known_scopes(scopes),
        ward_ids=frozenset(row.ward_id for row in rows if row.ward_id is not None),
        token_id=token_id,
        session_id=session_id,
    )
