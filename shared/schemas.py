"""The vitals message on the Kafka topic: one schema for the producer and the consumer.

Bounds are physical, not clinical: a pulse of 0 (asystole) or 250 is a real, alarming
reading and must be stored; a pulse of 900 is a broken sensor or a broken producer.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates,
    validates_schema,
)

# Physically possible ranges of each measurement.
PULSE_RANGE = (0, 300)
RESP_RATE_RANGE = (0, 100)
SYSTOLIC_RANGE = (0, 300)
DIASTOLIC_RANGE = (0, 250)
SPO2_RANGE = (0, 100)
TEMPERATURE_RANGE = (25.0, 45.0)

# Clocks drift; a sample from further ahead than this is a producer bug, not physiology.
MAX_CLOCK_SKEW = timedelta(minutes=5)
EARLIEST_SAMPLE = datetime(2000, 1, 1, tzinfo=UTC)
NAME_LENGTH = (1, 200)
# A hospital identifier (FHIR Identifier.system and .value; an MRN from HL7 PID-3).
IDENTIFIER_SYSTEM_LENGTH = (1, 255)
IDENTIFIER_VALUE_LENGTH = (1, 64)

MAX_MESSAGE_BYTES = 16 * 1024

_BP_PATTERN = re.compile(r"^(\d{1,3})/(\d{1,3})$")


def parse_bp(value: str) -> tuple[int, int]:
    """'120/80' -> (120, 80); raises ValidationError for anything else."""
    match = _BP_PATTERN.match(value) if isinstance(value, str) else None
    if not match:
        raise ValidationError("Blood pressure must look like '120/80' (systolic/diastolic).")
    systolic, diastolic = int(match[1]), int(match[2])
    if not SYSTOLIC_RANGE[0] <= systolic <= SYSTOLIC_RANGE[1]:
        raise ValidationError(f"Systolic pressure {systolic} is outside {SYSTOLIC_RANGE}.")
    if not DIASTOLIC_RANGE[0] <= diastolic <= DIASTOLIC_RANGE[1]:
        raise ValidationError(f"Diastolic pressure {diastolic} is outside {DIASTOLIC_RANGE}.")
    if systolic <= diastolic:
        raise ValidationError("Systolic pressure must be higher than diastolic.")
    return systolic, diastolic


def _between(bounds: tuple[float, float]) -> validate.Range:
    return validate.Range(min=bounds[0], max=bounds[1])


class IdentifierSchema(Schema):
    """The hospital's identifier for a patient: a URI naming the issuer, and the id in it."""

    class Meta:
        unknown = EXCLUDE

    system = fields.String(required=True, validate=validate.Length(*IDENTIFIER_SYSTEM_LENGTH))
    value = fields.String(required=True, validate=validate.Length(*IDENTIFIER_VALUE_LENGTH))


class VitalsSchema(Schema):
    """A vitals sample as sent on the topic."""

    class Meta:
        # A newer producer may add fields; they must not dead-letter the sample.
        unknown = EXCLUDE

    patient_uuid = fields.UUID(required=True)
    patient_name = fields.String(load_default=None, validate=validate.Length(*NAME_LENGTH))
    # Sent by the HL7 gateway, whose patients the hospital knows by their MRN.
    patient_identifier = fields.Nested(IdentifierSchema, load_default=None)
    timestamp = fields.AwareDateTime(required=True, format="iso")
    pulse = fields.Integer(required=True, strict=True, validate=_between(PULSE_RANGE))
    resp_rate = fields.Integer(required=True, strict=True, validate=_between(RESP_RATE_RANGE))
    bp = fields.String(required=True)
    spo2 = fields.Integer(required=True, strict=True, validate=_between(SPO2_RANGE))
    temperature = fields.Float(required=True, allow_nan=False, validate=_between(TEMPERATURE_RANGE))

    @validates("bp")
    def _validate_bp(self, value: str, **_kwargs: Any) -> None:
        parse_bp(value)

    @validates("timestamp")
    def _validate_timestamp(self, value: datetime, **_kwargs: Any) -> None:
        if value < EARLIEST_SAMPLE:
            raise ValidationError("Timestamp is before 2000.")
        if value > datetime.now(UTC) + MAX_CLOCK_SKEW:
            raise ValidationError("Timestamp is in the future.")

    @validates_schema(pass_original=True)
    def _reject_booleans(self, _data: dict, original: Any, **_kwargs: Any) -> None:
        # JSON true/false would pass as 1/0 through int-like checks in some paths.
        if isinstance(original, dict):
            bad = [
                k
                for k in ("pulse", "resp_rate", "spo2", "temperature")
                if isinstance(original.get(k), bool)
            ]
            if bad:
                raise ValidationError({k: ["Not a valid number."] for k in bad})

    @post_load
    def _split_bp(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        data["systolic"], data["diastolic"] = parse_bp(data.pop("bp"))
        data["timestamp"] = data["timestamp"].astimezone(UTC)
        return data


# The reasons of refusals, and the last word on what the quick path (shared.sample) does not
# take: the schema is several times slower a message.
vitals_schema = VitalsSchema()
