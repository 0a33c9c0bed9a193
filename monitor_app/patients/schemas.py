"""How patients are shown."""

from __future__ import annotations

from marshmallow import Schema, fields

from monitor_app.metrics.schemas import MetricSchema


class PatientSchema(Schema):
    """A patient and their newest sample."""

    uuid = fields.UUID(attribute="patient.uuid", dump_only=True)
    name = fields.String(attribute="patient.name", dump_only=True)
    created_at = fields.DateTime(
        attribute="patient.created_at",
        format="iso",
        dump_only=True,
        metadata={"description": "When Vigil first saw them, in UTC."},
    )
    latest = fields.Nested(
        MetricSchema,
        allow_none=True,
        dump_only=True,
        metadata={"description": "The newest sample, null if none yet."},
    )


class PatientDetailSchema(PatientSchema):
    """A patient, their newest sample and how many samples are kept of theirs."""

    sample_count = fields.Integer(
        dump_only=True,
        metadata={
            "description": "How many of the patient's samples are stored: samples older than"
            " the raw retention (RAW_RETENTION_DAYS) are no longer counted."
        },
    )
