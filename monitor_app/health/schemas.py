"""The health report."""

from __future__ import annotations

from marshmallow import Schema, fields


class HealthSchema(Schema):
    """Overall status and the database's."""

    status = fields.String(metadata={"description": "'ok' or 'degraded'."})
    database = fields.String(metadata={"description": "'ok', or why the database failed."})
