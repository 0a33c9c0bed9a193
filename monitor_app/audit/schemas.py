"""The audit trail's filters and records."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate, validates_schema

from monitor_app.fields import Instant, check_window
from shared.audit import AuditAction, Outcome


class AuditQueryArgsSchema(Schema):
    """Which events to list or export; the filters combine with AND."""

    user_id = fields.UUID()
    patient_uuid = fields.UUID()
    action = fields.String(validate=validate.OneOf([action.value for action in AuditAction]))
    outcome = fields.String(validate=validate.OneOf([outcome.value for outcome in Outcome]))
    since = Instant(format="iso", metadata={"description": "At or after this instant."})
    until = Instant(format="iso", metadata={"description": "Strictly before this instant."})

    @validates_schema
    def _window_is_ordered(self, data: dict[str, Any], **_kwargs: Any) -> None:
        check_window(data, "since", "until")


class AuditEventSchema(Schema):
    seq = fields.Integer(dump_only=True)
    at = fields.DateTime(format="iso", dump_only=True)
    user_id = fields.UUID(allow_none=True, dump_only=True)
    email = fields.String(allow_none=True, dump_only=True)
    role = fields.String(allow_none=True, dump_only=True)
    token_id = fields.UUID(allow_none=True, dump_only=True)
    action = fields.String(dump_only=True, metadata={"enum": [a.value for a in AuditAction]})
    resource = fields.String(allow_none=True, dump_only=True)
    patient_uuid = fields.UUID(allow_none=True, dump_only=True)
    outcome = fields.String(dump_only=True, metadata={"enum": [o.value for o in Outcome]})
    address = fields.String(allow_none=True, dump_only=True)
    user_agent = fields.String(allow_none=True, dump_only=True)
    detail = fields.Dict(allow_none=True, dump_only=True)


# The CSV export's columns, in order.
CSV_COLUMNS = tuple(AuditEventSchema().fields)
