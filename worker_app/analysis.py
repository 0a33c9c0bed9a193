"""A notification's analysis, step by step: claim, then complete, retry later or fail.

Each step is one short transaction of its own (opened and committed here), announced after
its commit, so clients see `processing` while the AI API is being asked.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import NamedTuple

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from shared.analysis_queue import Origin
from shared.db import db, utcnow
from shared.models import Notification
from shared.notifications import announce
from worker_app.ai_client import AnalysisResult

# Statuses from which a notification may (again) be analysed.
OPEN_STATUSES = ("pending", "processing")


def _change(
    app: Flask,
    notification_id: uuid.UUID,
    event_type: str,
    apply: Callable[[Notification], None],
    only_open: bool = True,
) -> Notification | None:
    """Apply one change in a transaction and announce it; None if there was nothing to do."""
    with db.sessionmaker(app).begin() as session:
        notification = _load_for_update(session, notification_id)
        if notification is None or (
            only_open and notification.processing_status not in OPEN_STATUSES
        ):
            return None
        apply(notification)
        notification.status_changed_at = utcnow()
    announce(app, event_type, [notification])
    return notification


def _load_for_update(session: Session, notification_id: uuid.UUID) -> Notification | None:
    query = (
        select(Notification)
        .where(Notification.id == notification_id)
        .options(selectinload(Notification.patient), selectinload(Notification.reads))
    )
    if session.get_bind().dialect.name == "postgresql":
        # Two copies of one task (a re-queue racing a redelivery) then take turns.
        query = query.with_for_update(of=Notification)
    return session.scalar(query)


def claim(app: Flask, notification_id: uuid.UUID) -> Notification | None:
    """Mark it processing and count the attempt; None if it is done, failed or unknown."""

    def start(notification: Notification) -> None:
        notification.processing_status = "processing"
        notification.attempts += 1

    return _change(app, notification_id, "notification.processing", start)


def complete(app: Flask, notification_id: uuid.UUID, result: AnalysisResult) -> None:
    def store(notification: Notification) -> None:
        notification.processing_status = "completed"
        notification.category = result.category
        notification.confidence = result.confidence
        notification.keywords = result.keywords
        notification.failure_reason = None
        notification.analysed_at = utcnow()

    _change(app, notification_id, "notification.analysed", store)


def await_retry(app: Flask, notification_id: uuid.UUID, reason: str) -> None:
    """Back to pending until the retry runs; the reason shows why."""

    def wait(notification: Notification) -> None:
        notification.processing_status = "pending"
        notification.failure_reason = reason

    _change(app, notification_id, "notification.processing", wait)


def fail(app: Flask, notification_id: uuid.UUID, reason: str) -> None:
    def give_up(notification: Notification) -> None:
        notification.processing_status = "failed"
        notification.failure_reason = reason
        notification.analysed_at = utcnow()

    _change(app, notification_id, "notification.analysed", give_up)


class Stale(NamedTuple):
    """A notification to analyse again, and the queue it was first sent to."""

    id: uuid.UUID
    attempts: int
    origin: Origin


def stale_notifications(app: Flask, older_than_seconds: float, limit: int = 500) -> list[Stale]:
    """Open notifications untouched for that long; touched now, so the next sweep leaves them
    alone while they wait in the queue again."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    with db.sessionmaker(app).begin() as session:
        rows = session.execute(
            select(Notification.id, Notification.attempts, Notification.sender_id)
            .where(
                Notification.processing_status.in_(OPEN_STATUSES),
                Notification.status_changed_at < cutoff,
            )
            .order_by(Notification.status_changed_at)
            .limit(limit)
        ).all()
        if rows:
            session.execute(
                update(Notification)
                .where(Notification.id.in_([row.id for row in rows]))
                .values(status_changed_at=utcnow())
            )
    # Vitals alerts are the notifications nobody sent.
    return [
        Stale(row.id, row.attempts, Origin.ALERT if row.sender_id is None else Origin.API)
        for row in rows
    ]
