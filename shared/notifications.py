"""Notifications to clinicians: how one is created, shown and announced, for every app.

monitor_app creates them from the API, data_app from vitals alerts, and the worker stores their
analysis; all three announce a change the same way: the analysis queued if new, and an event
that reaches WebSocket clients and invalidates cached notification reads.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from flask import Flask, current_app, has_request_context
from marshmallow import Schema, fields
from sqlalchemy.orm import Session

from shared.analysis_queue import AnalysisQueue, Origin
from shared.auth.principal import current_principal
from shared.config import RedisRole, redis_url
from shared.events import NOTIFICATIONS, Events
from shared.models import Notification
from shared.telemetry import NOTIFICATIONS_CREATED

MAX_TITLE_LENGTH = 200
MAX_TEXT_LENGTH = 10_000


class NotificationReadSchema(Schema):
    user_id = fields.UUID(dump_only=True)
    read_at = fields.DateTime(format="iso", dump_only=True)


def _caller_read_at(notification: Notification) -> str | None:
    """When the signed-in caller read it; events, which go to everyone, carry only read_by."""
    principal = current_principal() if has_request_context() else None
    if principal is None:
        return None
    for reading in notification.reads:
        if reading.user_id == principal.user_id:
            return reading.read_at.isoformat()
    return None


class NotificationSchema(Schema):
    """A notification with its analysis (null fields until analysed)."""

    id = fields.UUID(dump_only=True)
    user_id = fields.UUID(
        dump_only=True,
        metadata={"description": "The recipient: a user's id, or a ward's (all its clinicians)."},
    )
    sender_id = fields.UUID(
        allow_none=True,
        dump_only=True,
        metadata={"description": "Who sent it; null for Vigil's own vitals alerts."},
    )
    patient_uuid = fields.Function(
        lambda n: n.patient.uuid if n.patient_id is not None else None,
        dump_only=True,
        metadata={
            "type": "string",
            "format": "uuid",
            "nullable": True,
            "description": "The patient it concerns, if any.",
        },
    )
    title = fields.String(dump_only=True)
    text = fields.String(dump_only=True)
    created_at = fields.DateTime(format="iso", dump_only=True)
    read_at = fields.Function(
        _caller_read_at,
        dump_only=True,
        metadata={
            "type": "string",
            "format": "date-time",
            "nullable": True,
            "description": "When the caller marked it read; null if they have not.",
        },
    )
    read_by = fields.List(
        fields.Nested(NotificationReadSchema),
        attribute="reads",
        dump_only=True,
        metadata={"description": "Who has read it, and when, first reader first."},
    )
    category = fields.String(
        allow_none=True, dump_only=True, metadata={"enum": ["info", "warning", "critical"]}
    )
    confidence = fields.Float(allow_none=True, dump_only=True)
    keywords = fields.List(fields.String(), allow_none=True, dump_only=True)
    processing_status = fields.String(
        dump_only=True, metadata={"enum": ["pending", "processing", "completed", "failed"]}
    )
    failure_reason = fields.String(
        allow_none=True, dump_only=True, metadata={"description": "Why the analysis failed."}
    )
    attempts = fields.Integer(dump_only=True, metadata={"description": "Analysis attempts so far."})
    analysed_at = fields.DateTime(format="iso", allow_none=True, dump_only=True)


notification_schema = NotificationSchema()


def add_notification(
    session: Session,
    *,
    user_id: uuid.UUID,
    title: str,
    text: str,
    patient_id: int | None = None,
    sender_id: uuid.UUID | None = None,
) -> Notification:
    """Add a pending notification to the caller's transaction (which the caller commits)."""
    notification = Notification(
        user_id=user_id,
        sender_id=sender_id,
        reads=[],
        title=title[:MAX_TITLE_LENGTH],
        text=text[:MAX_TEXT_LENGTH],
        patient_id=patient_id,
        processing_status="pending",
        attempts=0,
    )
    session.add(notification)
    session.flush()
    return notification


def init_notifications(app: Flask) -> None:
    """Bind the app's Redis-backed event publisher and analysis queue (connects lazily)."""
    config = app.config
    namespace = config["REDIS_NAMESPACE"]
    app.extensions["vigil.events"] = Events(redis_url(config, RedisRole.EVENTS), namespace)
    app.extensions["vigil.analysis_queue"] = AnalysisQueue(
        redis_url(config, RedisRole.QUEUE), namespace
    )


def events(app: Flask | None = None) -> Events:
    return (app or current_app).extensions["vigil.events"]


def analysis_queue(app: Flask | None = None) -> AnalysisQueue:
    return (app or current_app).extensions["vigil.analysis_queue"]


def announce(
    app: Flask,
    event_type: str,
    notifications: Iterable[Notification],
    source: Origin = Origin.API,
) -> None:
    """After the commit: queue new notifications for analysis and publish the change.

    Call with notifications whose `patient` is loaded (or who have none); `source` says who
    created them, for the metrics and the analysis queue (alerts have one of their own).
    """
    notifications = list(notifications)
    if event_type == "notification.created":
        NOTIFICATIONS_CREATED.labels(source).inc(len(notifications))
        analysis_queue(app).enqueue((n.id for n in notifications), source)
    for notification in notifications:
        events(app).publish(
            event_type,
            {"notification": notification_schema.dump(notification)},
            invalidates=(NOTIFICATIONS,),
        )
