"""How a patient's downsampled history is shown, and the query arguments that select it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from monitor_app.fields import Instant
from monitor_app.history.services import WINDOWS, History, Stats
from monitor_app.json_body import utc_text
from monitor_app.metrics.schemas import INSTANT_FORMAT
from shared.db import utcnow

_BUCKETS = "; ".join(f"{name}: {width} s" for name, (_span, width) in WINDOWS.items())


class VitalStatsSchema(Schema):
    """Lowest, mean and highest of a whole-number vital within one bucket."""

    # Attribute names that do not shadow the min and max builtins (services.Stats').
    lowest = fields.Integer(
        data_key="min",
        dump_only=True,
        metadata={"description": "Lowest value in the bucket."},
    )
    avg = fields.Float(
        dump_only=True, metadata={"description": "Mean, rounded half up to 1 decimal place."}
    )
    highest = fields.Integer(
        data_key="max",
        dump_only=True,
        metadata={"description": "Highest value in the bucket."},
    )


class ScoreStatsSchema(Schema):
    """Lowest, mean and highest NEWS2 score within one bucket, null if none was scored."""

    lowest = fields.Integer(
        data_key="min",
        allow_none=True,
        dump_only=True,
        metadata={"description": "Lowest score in the bucket."},
    )
    avg = fields.Float(
        allow_none=True,
        dump_only=True,
        metadata={"description": "Mean, rounded half up to 1 decimal place."},
    )
    highest = fields.Integer(
        data_key="max",
        allow_none=True,
        dump_only=True,
        metadata={"description": "Highest score in the bucket."},
    )


class TemperatureStatsSchema(Schema):
    """Lowest, mean and highest temperature within one bucket."""

    lowest = fields.Float(
        data_key="min",
        dump_only=True,
        metadata={"description": "Lowest value in the bucket."},
    )
    avg = fields.Float(
        dump_only=True, metadata={"description": "Mean, rounded half up to 2 decimal places."}
    )
    highest = fields.Float(
        data_key="max",
        dump_only=True,
        metadata={"description": "Highest value in the bucket."},
    )


class BucketSchema(Schema):
    """The samples of one time bucket, summarised per vital."""

    start = fields.DateTime(
        format="iso",
        dump_only=True,
        metadata={
            "description": "Start of the bucket, in UTC: a multiple of `bucket_seconds` "
            "since the Unix epoch. It ends where the next would start."
        },
    )
    count = fields.Integer(
        dump_only=True, metadata={"description": "Samples in the bucket, at least 1."}
    )
    pulse = fields.Nested(
        VitalStatsSchema, dump_only=True, metadata={"description": "Beats per minute."}
    )
    resp_rate = fields.Nested(
        VitalStatsSchema, dump_only=True, metadata={"description": "Breaths per minute."}
    )
    systolic = fields.Nested(
        VitalStatsSchema, dump_only=True, metadata={"description": "Systolic blood pressure, mmHg."}
    )
    diastolic = fields.Nested(
        VitalStatsSchema,
        dump_only=True,
        metadata={"description": "Diastolic blood pressure, mmHg."},
    )
    spo2 = fields.Nested(
        VitalStatsSchema, dump_only=True, metadata={"description": "Oxygen saturation, %."}
    )
    temperature = fields.Nested(
        TemperatureStatsSchema, dump_only=True, metadata={"description": "Degrees Celsius."}
    )
    news2_score = fields.Nested(
        ScoreStatsSchema,
        dump_only=True,
        metadata={
            "description": "NEWS2 aggregate score; null statistics when no sample in the "
            "bucket was scored (samples stored before scoring existed)."
        },
    )


class HistorySchema(Schema):
    """A patient's vital signs over a window, one summary per time bucket."""

    patient_uuid = fields.UUID(dump_only=True, metadata={"description": "Whose vitals these are."})
    window = fields.String(
        dump_only=True, metadata={"enum": list(WINDOWS), "description": "The window asked for."}
    )
    since = fields.DateTime(
        data_key="from",
        format="iso",
        dump_only=True,
        metadata={"description": "Start of the window (inclusive), in UTC."},
    )
    until = fields.DateTime(
        data_key="to",
        format="iso",
        dump_only=True,
        metadata={"description": "End of the window (exclusive), in UTC."},
    )
    bucket_seconds = fields.Integer(
        dump_only=True, metadata={"description": f"Width of each bucket. {_BUCKETS}."}
    )
    buckets = fields.List(
        fields.Nested(BucketSchema),
        dump_only=True,
        metadata={
            "description": "Oldest first. A bucket without samples is left out, so a chart "
            "shows a gap rather than a made-up value."
        },
    )


class ShownBucket(msgspec.Struct, frozen=True):
    """One bucket as BucketSchema documents it, its fields in the order of their names
    (monitor_app.json_body)."""

    count: int
    diastolic: Stats
    news2_score: Stats
    pulse: Stats
    resp_rate: Stats
    spo2: Stats
    start: str
    systolic: Stats
    temperature: Stats


class ShownHistory(msgspec.Struct, frozen=True):
    """A history as HistorySchema documents it, its fields in the order of their names."""

    bucket_seconds: int
    buckets: list[ShownBucket]
    since: str = msgspec.field(name="from")
    patient_uuid: uuid.UUID
    until: str = msgspec.field(name="to")
    window: str


def shown_history(history: History) -> ShownHistory:
    """`HistorySchema().dump(history)` as Structs, built directly: marshmallow's nested dump
    of some 3,000 values was most of the endpoint's cost. A test holds the two to the same
    bytes."""
    return ShownHistory(
        bucket_seconds=history.bucket_seconds,
        buckets=[
            ShownBucket(
                count=bucket.count,
                diastolic=bucket.diastolic,
                news2_score=bucket.news2_score,
                pulse=bucket.pulse,
                resp_rate=bucket.resp_rate,
                spo2=bucket.spo2,
                start=utc_text(bucket.start),
                systolic=bucket.systolic,
                temperature=bucket.temperature,
            )
            for bucket in history.buckets
        ],
        since=utc_text(history.since),
        patient_uuid=history.patient_uuid,
        until=utc_text(history.until),
        window=history.window,
    )


class HistoryQueryArgsSchema(Schema):
    """Which stretch of history to summarise: a window ending at an instant."""

    window = fields.String(
        load_default="1h",
        validate=validate.OneOf(list(WINDOWS)),
        metadata={"description": f"How far back from `to` to look. Bucket widths: {_BUCKETS}."},
    )
    # A naive time would be read in some unknown zone; asking for the offset avoids the guess.
    until = Instant(
        data_key="to",
        format="iso",
        load_default=utcnow,
        metadata={
            "description": "End of the window, exclusive; defaults to now. " + INSTANT_FORMAT
        },
    )

    @validates_schema
    def _window_starts_after_year_one(self, data: dict[str, Any], **_kwargs: Any) -> None:
        span, _bucket_seconds = WINDOWS[data["window"]]
        if data["until"] - datetime.min.replace(tzinfo=UTC) < span:
            raise ValidationError("The window would start before year 1.", field_name="to")
