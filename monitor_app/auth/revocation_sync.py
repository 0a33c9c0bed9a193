"""Keeps the shared revocation sets (shared/auth/revocation.py) equal to the database.

Revoking a token or disabling an account updates them at once; this thread rewrites them
from the database when the server starts and every minute after, so a change made while
Redis was down, or a Redis that restarted empty, is mended within a minute.
"""

from __future__ import annotations

import logging

import redis
from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.auth.revocation import Revocations
from shared.background import BackgroundThread
from shared.db import db, utcnow
from shared.identity import ApiToken, User

log = logging.getLogger(__name__)

SYNC_INTERVAL_SECONDS = 60.0


def revocations(app: Flask | None = None) -> Revocations:
    return (app or current_app).extensions["vigil.revocations"]


def revoked_now(session: Session) -> tuple[list, list]:
    """(ids of revoked tokens not yet expired, ids of disabled accounts)."""
    now = utcnow()
    tokens = session.scalars(
        select(ApiToken.id).where(
            ApiToken.revoked_at.is_not(None),
            (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now),
        )
    )
    users = session.scalars(select(User.id).where(User.active.is_(False)))
    return list(tokens), list(users)


def announce_revoked_token(token_id) -> None:
    """After the commit: tell every app at once (the sync mends it if Redis is down)."""
    try:
        revocations().revoke_token(token_id)
    except redis.RedisError as exc:
        log.warning("revocation not shared yet; the next sync will", extra={"error": str(exc)})


def announce_account_state(user_id, active: bool) -> None:
    try:
        revocations().set_user_disabled(user_id, not active)
    except redis.RedisError as exc:
        log.warning("account state not shared yet; the next sync will", extra={"error": str(exc)})


class RevocationSync(BackgroundThread):
    def __init__(self, app: Flask) -> None:
        super().__init__("revocation-sync")
        self.app = app
        self.retry_delay = 5.0
        self.failure_message = "could not share the revocations; retrying"

    def _work(self) -> float:
        with db.sessionmaker(self.app)() as session:
            tokens, users = revoked_now(session)
        revocations(self.app).replace(tokens, users)
        return SYNC_INTERVAL_SECONDS
