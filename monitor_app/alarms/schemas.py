"""What a client may send to change a patient's alarm limits, and how the limits are shown."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from shared.alarm_limits import PHYSICAL_RANGES, Bound, Parameter

MAX_REASON_LENGTH = 500


class LimitValue(fields.Float):
    """A finite JSON number: not a string of one, nor true/false (Python's 1/0)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=False, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def changes_schema(parameter: Parameter) -> type[Schema]:
    """The changes to one parameter's limits, each within what the sensor can measure."""
    low, high = PHYSICAL_RANGES[parameter]
    in_range = validate.Range(min=low, max=high)
    declared = {bound.value: LimitValue(validate=in_range) for bound in Bound}
    name = "".join(part.title() for part in parameter.value.split("_"))
    return Schema.from_dict(declared, name=f"{name}LimitChangesSchema")


class AlarmLimitsChangeSchema(Schema):
    """The limits to change and why; a parameter or bound left out keeps its value."""

    pulse = fields.Nested(changes_schema(Parameter.PULSE))
    resp_rate = fields.Nested(changes_schema(Parameter.RESP_RATE))
    spo2 = fields.Nested(changes_schema(Parameter.SPO2))
    systolic = fields.Nested(changes_schema(Parameter.SYSTOLIC))
    temperature = fields.Nested(changes_schema(Parameter.TEMPERATURE))

    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_REASON_LENGTH),
        metadata={"description": "Why, for the audit trail (at most 500 characters)."},
    )

    @validates("reason")
    def _not_blank(self, value: str, **_kwargs: Any) -> None:
        if not value.strip():
            raise ValidationError("Must not be empty.")

    @validates_schema
    def _changes_something(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if not any(data.get(parameter.value) for parameter in Parameter):
            raise ValidationError("Name at least one limit to change.", "_schema")


class LimitsSchema(Schema):
    """One parameter's effective limits; null: no alarm on that side."""

    low = fields.Float(allow_none=True, dump_only=True)
    high = fields.Float(allow_none=True, dump_only=True)
    extreme_low = fields.Float(
        allow_none=True, dump_only=True, metadata={"description": "Alarms at once."}
    )
    extreme_high = fields.Float(
        allow_none=True, dump_only=True, metadata={"description": "Alarms at once."}
    )


class AlarmLimitsSchema(Schema):
    """A patient's effective alarm limits: the defaults, with what clinicians changed."""

    patient_uuid = fields.UUID(dump_only=True)
    pulse = fields.Nested(LimitsSchema, dump_only=True)
    resp_rate = fields.Nested(LimitsSchema, dump_only=True)
    spo2 = fields.Nested(LimitsSchema, dump_only=True)
    systolic = fields.Nested(LimitsSchema, dump_only=True)
    temperature = fields.Nested(LimitsSchema, dump_only=True)
    reason = fields.String(
        allow_none=True, dump_only=True, metadata={"description": "Why of the last change."}
    )
    updated_by = fields.UUID(allow_none=True, dump_only=True)
    updated_at = fields.DateTime(
        format="iso", allow_none=True, dump_only=True, metadata={"description": "Null: defaults."}
    )


class AlarmQueryArgsSchema(Schema):
    """Which alarms to list; every filter is optional, and they combine with AND."""

    state = fields.String(
        validate=validate.OneOf(["open", "active", "acknowledged", "resolved"]),
        metadata={"description": "`open`: active or acknowledged, not yet resolved."},
    )
    priority = fields.String(validate=validate.OneOf(["high", "medium", "low"]))
    kind = fields.String(validate=validate.OneOf(["physiological", "technical"]))
    patient_uuid = fields.UUID()


def silence_schema(max_seconds: int) -> type[Schema]:
    """How long to silence an alarm, bounded by ALARM_SILENCE_MAX_SECONDS."""
    return Schema.from_dict(
        {
            "seconds": fields.Integer(
                strict=True,
                load_default=max_seconds,
                validate=validate.Range(min=1, max=max_seconds),
                metadata={"description": f"At most {max_seconds}; {max_seconds} if left out."},
            )
        },
        name="AlarmSilenceSchema",
    )
