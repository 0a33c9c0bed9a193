"""One vitals sample as Vigil's apps hand it on: a frozen, typed value, decoded in C.

The topic's message (shared.schemas.VitalsSchema) is read by msgspec, with the schema's bounds
as `Meta` constraints, into `VitalsSample`; what msgspec cannot say (the "120/80" text, the
instant's range) is checked just after. That is the path of nearly every message. Anything it
does not take is left to the marshmallow schema, which decides and says why: the reasons of
refusals stay the schema's, and a message the quick path is too strict for is still loaded.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from marshmallow import ValidationError
from msgspec import Meta

from shared.blood_pressure import format_bp
from shared.schemas import (
    EARLIEST_SAMPLE,
    IDENTIFIER_SYSTEM_LENGTH,
    IDENTIFIER_VALUE_LENGTH,
    MAX_CLOCK_SKEW,
    NAME_LENGTH,
    PULSE_RANGE,
    RESP_RATE_RANGE,
    SPO2_RANGE,
    TEMPERATURE_RANGE,
    parse_bp,
    vitals_schema,
)

# The instants producers send: extended ISO 8601 with seconds and an explicit zone.
_USUAL_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")


def _length(bounds: tuple[int, int]) -> Meta:
    return Meta(min_length=bounds[0], max_length=bounds[1])


def _between(bounds: tuple[float, float]) -> Meta:
    return Meta(ge=bounds[0], le=bounds[1])


class PatientIdentifier(msgspec.Struct, frozen=True):
    """The hospital's identifier for a patient: a URI naming the issuer, and the id in it."""

    system: Annotated[str, _length(IDENTIFIER_SYSTEM_LENGTH)]
    value: Annotated[str, _length(IDENTIFIER_VALUE_LENGTH)]


class VitalsSample(msgspec.Struct, frozen=True, kw_only=True):
    """One patient's vitals at one instant, validated: what data_app stores and scores."""

    patient_uuid: uuid.UUID
    patient_name: str | None = None
    patient_identifier: PatientIdentifier | None = None
    timestamp: datetime  # aware, in UTC
    pulse: int
    resp_rate: int
    systolic: int
    diastolic: int
    spo2: int
    temperature: float

    @property
    def bp(self) -> str:
        return format_bp(self.systolic, self.diastolic)

    @classmethod
    def from_loaded(cls, loaded: dict[str, Any]) -> VitalsSample:
        """From what `vitals_schema.load` returns (the identifier a dict, the BP split)."""
        identifier = loaded.get("patient_identifier")
        if identifier is not None:
            identifier = PatientIdentifier(**identifier)
        return cls(**{**loaded, "patient_identifier": identifier})


class _Message(msgspec.Struct, frozen=True):
    """The message as sent on the topic, with the schema's bounds (unknown fields ignored)."""

    patient_uuid: uuid.UUID
    # Kept as text for `datetime.fromisoformat`, the schema's own parser: msgspec's reading of
    # an instant (rounding of fractions, forms it takes) is not the schema's.
    timestamp: Annotated[str, Meta(pattern=_USUAL_INSTANT.pattern)]
    pulse: Annotated[int, _between(PULSE_RANGE)]
    resp_rate: Annotated[int, _between(RESP_RATE_RANGE)]
    bp: str  # parse_bp's, after
    spo2: Annotated[int, _between(SPO2_RANGE)]
    # A float field takes JSON's integers as floats, as marshmallow's Float does; NaN and
    # Infinity are not JSON to msgspec, and 1e999 is out of range.
    temperature: Annotated[float, _between(TEMPERATURE_RANGE)]
    patient_name: Annotated[str, _length(NAME_LENGTH)] | None = None
    patient_identifier: PatientIdentifier | None = None


_DECODER = msgspec.json.Decoder(_Message)


def decode_vitals(value: bytes) -> VitalsSample | None:
    """The sample in a message's bytes if plainly valid; None when the schema must look.

    OverflowError for an instant with no UTC form (see `_checked`)."""
    try:
        return _checked(_DECODER.decode(value))
    # RecursionError: msgspec raises it, as json does, for arrays nested thousands deep.
    except (msgspec.DecodeError, RecursionError):
        return None


def convert_vitals(document: Any) -> VitalsSample | None:
    """The sample in an already parsed message if plainly valid; None when the schema must
    look. OverflowError for an instant with no UTC form (see `_checked`)."""
    try:
        return _checked(msgspec.convert(document, _Message))
    except (msgspec.ValidationError, RecursionError):
        return None


def vitals_errors(document: Any) -> dict[str, Any]:
    """`vitals_schema.validate(document)`, sooner for the usual well-formed sample."""
    try:
        if convert_vitals(document) is not None:
            return {}
    except OverflowError:  # an instant with no UTC form: the schema's errors name the field
        pass
    return vitals_schema.validate(document)


def _checked(message: _Message) -> VitalsSample | None:
    """The rules msgspec cannot express: the instant's range and the "120/80" text.

    An instant valid in ISO 8601 that has no UTC form (year 1 east of UTC) raises
    OverflowError, which is the refusal's reason: the schema would only call it "in the
    future".
    """
    try:
        timestamp = datetime.fromisoformat(message.timestamp).astimezone(UTC)
    except ValueError:
        return None
    if not EARLIEST_SAMPLE <= timestamp <= datetime.now(UTC) + MAX_CLOCK_SKEW:
        return None
    try:
        systolic, diastolic = parse_bp(message.bp)
    except ValidationError:
        return None
    return VitalsSample(
        patient_uuid=message.patient_uuid,
        patient_name=message.patient_name,
        patient_identifier=message.patient_identifier,
        timestamp=timestamp,
        pulse=message.pulse,
        resp_rate=message.resp_rate,
        systolic=systolic,
        diastolic=diastolic,
        spo2=message.spo2,
        temperature=message.temperature,
    )
