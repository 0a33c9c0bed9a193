"""The vitals message on the Kafka topic: one schema for the producer and the consumer.

Bounds are physical, not clinical: a pulse of 0 (asystole) or 250 is a real, alarming
reading and must be stored; a pulse of 900 is a broken sensor or a broken producer.
"""

from __future__ import annotations

import math
import re
import uuid
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
# The instants producers send: extended ISO 8601 with seconds and an explicit zone.
_USUAL_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")


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


vitals_schema = VitalsSchema()


def load_vitals(document: Any) -> dict[str, Any]:
    """What `vitals_schema.load(document)` returns, sooner for the usual well-formed sample.

    data_app loads every sample on the topic, and marshmallow's load costs most of a
    sample's way into the database. The quick path checks the same limits (the constants
    above) and hands anything unusual to the schema, which then decides and says why.
    """
    sample = _load_usual(document)
    return sample if sample is not None else vitals_schema.load(document)


def vitals_errors(document: Any) -> dict[str, Any]:
    """`vitals_schema.validate(document)`, sooner for the usual well-formed sample."""
    return {} if _load_usual(document) is not None else vitals_schema.validate(document)


def _load_usual(document: Any) -> dict[str, Any] | None:
    """The loaded sample if `document` is plainly valid; None if the schema must look."""
    try:
        name = document.get("patient_name")
        timestamp, bp = document["timestamp"], document["bp"]
        integers = (document["pulse"], document["resp_rate"], document["spo2"])
        temperature = document["temperature"]
        if not (
            document.get("patient_identifier") is None
            and type(timestamp) is str
            and _USUAL_INSTANT.match(timestamp)
            and type(bp) is str
            and all(type(value) is int for value in integers)
            and type(temperature) in (float, int)
            and math.isfinite(temperature)
            and (
                name is None or type(name) is str and NAME_LENGTH[0] <= len(name) <= NAME_LENGTH[1]
            )
        ):
            return None
        pulse, resp_rate, spo2 = integers
        if not (
            PULSE_RANGE[0] <= pulse <= PULSE_RANGE[1]
            and RESP_RATE_RANGE[0] <= resp_rate <= RESP_RATE_RANGE[1]
            and SPO2_RANGE[0] <= spo2 <= SPO2_RANGE[1]
            and TEMPERATURE_RANGE[0] <= temperature <= TEMPERATURE_RANGE[1]
        ):
            return None
        moment = datetime.fromisoformat(timestamp).astimezone(UTC)
        if not EARLIEST_SAMPLE <= moment <= datetime.now(UTC) + MAX_CLOCK_SKEW:
            return None
        systolic, diastolic = parse_bp(bp)
        patient_uuid = uuid.UUID(document["patient_uuid"])
    except (AttributeError, KeyError, TypeError, ValueError, ValidationError):
        return None
    return {
        "patient_uuid": patient_uuid,
        "patient_name": name,
        "patient_identifier": None,
        "timestamp": moment,
        "pulse": pulse,
        "resp_rate": resp_rate,
        "spo2": spo2,
        "temperature": float(temperature),
        "systolic": systolic,
        "diastolic": diastolic,
    }
