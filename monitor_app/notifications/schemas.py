"""What a client may send to create or select notifications, and the status view."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from monitor_app.fields import Instant, check_window
from shared.models import CATEGORIES, PROCESSING_STATUSES
from shared.notifications import MAX_TEXT_LENGTH, MAX_TITLE_LENGTH, NotificationSchema

# Sequence numbers are 64-bit integers; a larger snapshot would overflow the query.
MAX_SEQ = 2**63 - 1

__all__ = [
    "NotificationCreateSchema",
    "NotificationQueryArgsSchema",
    "NotificationSchema",
    "NotificationStatusSchema",
]


class NotificationCreateSchema(Schema):
    """A new notification. Unknown fields are refused."""

    user_id = fields.UUID(required=True, metadata={"description": "The clinician to notify."})
    title = fields.String(required=True, validate=validate.Length(max=MAX_TITLE_LENGTH))
    text = fields.String(required=True, validate=validate.Length(max=MAX_TEXT_LENGTH))
    patient_uuid = fields.UUID(
        allow_none=True, metadata={"description": "The patient it concerns, if any."}
    )

    @validates("title", "text")
    def _not_blank(self, value: str, data_key: str, **_kwargs: Any) -> None:
        if not value.strip():
            raise ValidationError("Must not be empty.")


class NotificationQueryArgsSchema(Schema):
    """Which notifications to list. Every filter is optional; they combine with AND."""

    user_id = fields.UUID()
    patient_uuid = fields.UUID()
    category = fields.String(validate=validate.OneOf(CATEGORIES))
    processing_status = fields.String(
        data_key="status", validate=validate.OneOf(PROCESSING_STATUSES)
    )
    read = fields.Boolean(metadata={"description": "true: only read ones; false: only unread."})
    created_from = Instant(
        format="iso",
        metadata={"description": "Created at or after this instant (ISO-8601 with an offset)."},
    )
    created_to = Instant(
        format="iso", metadata={"description": "Created strictly before this instant."}
    )
    snapshot = fields.Integer(
        validate=validate.Range(min=0, max=MAX_SEQ),
        metadata={
            "description": "The X-Snapshot header of the first page. Passing it on the "
            "next pages keeps them stable while new notifications arrive."
        },
    )

    @validates_schema
    def _window_is_ordered(self, data: dict[str, Any], **_kwargs: Any) -> None:
        check_window(data, "created_from", "created_to")


class NotificationStatusSchema(Schema):
    """Where a notification's analysis stands, and its result once completed."""

    id = fields.UUID(dump_only=True)
    processing_status = fields.String(dump_only=True, metadata={"enum": list(PROCESSING_STATUSES)})
    category = fields.String(allow_none=True, dump_only=True)
    confidence = fields.Float(allow_none=True, dump_only=True)
    keywords = fields.List(fields.String(), allow_none=True, dump_only=True)
    failure_reason = fields.String(allow_none=True, dump_only=True)
    attempts = fields.Integer(dump_only=True)
    status_changed_at = fields.DateTime(format="iso", dump_only=True)
    analysed_at = fields.DateTime(format="iso", allow_none=True, dump_only=True)
