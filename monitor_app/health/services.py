"""Probes of what the API depends on. Functions take the caller's session and never commit."""

from __future__ import annotations

import logging

import redis
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from shared.models import Patient

log = logging.getLogger(__name__)


def database_problem(session: Session) -> str | None:
    """None when the patients table answers a query, otherwise what went wrong."""
    try:
        # Reading a real table, not SELECT 1, also catches a schema that is not migrated yet.
        session.execute(select(Patient.id).limit(1))
    except SQLAlchemyError as exc:
        log.warning("database health check failed", exc_info=True)
        reason = str(getattr(exc, "orig", None) or exc).strip()
        return reason.splitlines()[0] if reason else type(exc).__name__
    return None


def redis_problem(client: redis.Redis) -> str | None:
    """None when Redis answers a PING, otherwise what went wrong."""
    try:
        client.ping()
    except redis.RedisError as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None
