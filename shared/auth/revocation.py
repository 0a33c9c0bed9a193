"""Revoked tokens and disabled accounts, shared on Redis so every app refuses them at once.

monitor_app, which keeps the accounts, adds to these sets when a token is revoked or an
account disabled, and rewrites them from its database when it starts. patient_app and
data_app check every token against them; with Redis unreachable they refuse the request
(503) rather than honour a token that may have been revoked.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import redis

from shared.events import redis_client


class RevocationUnavailableError(RuntimeError):
    """Redis did not answer, so nobody can tell whether a token still holds."""


class Revocations:
    def __init__(self, redis_url: str, namespace: str) -> None:
        self.redis = redis_client(redis_url)
        self.tokens_key = f"{namespace}:auth:revoked-tokens"
        self.users_key = f"{namespace}:auth:disabled-users"

    def holds(self, token_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """False if the token was revoked or its account disabled."""
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.sismember(self.tokens_key, str(token_id))
                pipe.sismember(self.users_key, str(user_id))
                revoked, disabled = pipe.execute()
        except redis.RedisError as exc:
            raise RevocationUnavailableError(str(exc)) from exc
        return not (revoked or disabled)

    def revoke_token(self, token_id: uuid.UUID) -> None:
        self.redis.sadd(self.tokens_key, str(token_id))

    def set_user_disabled(self, user_id: uuid.UUID, disabled: bool) -> None:
        if disabled:
            self.redis.sadd(self.users_key, str(user_id))
        else:
            self.redis.srem(self.users_key, str(user_id))

    def replace(self, token_ids: Iterable[uuid.UUID], user_ids: Iterable[uuid.UUID]) -> None:
        """Make the sets exactly these (monitor_app's database is the truth), atomically."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.tokens_key, self.users_key)
            tokens, users = [str(t) for t in token_ids], [str(u) for u in user_ids]
            if tokens:
                pipe.sadd(self.tokens_key, *tokens)
            if users:
                pipe.sadd(self.users_key, *users)
            pipe.execute()
