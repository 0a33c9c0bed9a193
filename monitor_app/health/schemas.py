"""The health report."""

from __future__ import annotations

from marshmallow import Schema, fields


class LiveSchema(Schema):
    connected = fields.Boolean(metadata={"description": "Whether events reach this worker."})
    clients = fields.Integer(metadata={"description": "WebSocket clients of this worker."})


class HealthSchema(Schema):
    """Overall status; for admins also the database's and Redis's, and the live stream of
    this worker."""

    status = fields.String(metadata={"description": "'ok' or 'degraded'."})
    database = fields.String(metadata={"description": "'ok', or why the database failed."})
    redis = fields.String(
        metadata={
            "description": "'ok', or why Redis failed (the API "
            "then serves uncached, without live "
            "updates)."
        }
    )
    live = fields.Nested(LiveSchema)
