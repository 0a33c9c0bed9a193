"""How samples are shown, and the query arguments that select them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import msgspec
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from monitor_app.config import EXPORT_MAX_SPAN_DAYS, METRICS_LIMIT, METRICS_MAX_LIMIT
from monitor_app.fields import Instant, check_window
from monitor_app.json_body import utc_text
from shared.blood_pressure import format_bp
from shared.news2 import BANDS

INSTANT_FORMAT = (
    "ISO-8601 with a UTC offset, e.g. 2025-01-31T08:00:00Z (write '+' as %2B in "
    "a URL); a time without an offset is refused."
)


class MetricSchema(Schema):
    """One vitals sample."""

    timestamp = fields.DateTime(
        format="iso", dump_only=True, metadata={"description": "When it was measured, in UTC."}
    )
    pulse = fields.Integer(dump_only=True, metadata={"description": "Beats per minute."})
    resp_rate = fields.Integer(dump_only=True, metadata={"description": "Breaths per minute."})
    bp = fields.String(dump_only=True, metadata={"description": "Blood pressure, e.g. '120/80'."})
    systolic = fields.Integer(dump_only=True, metadata={"description": "mmHg."})
    diastolic = fields.Integer(dump_only=True, metadata={"description": "mmHg."})
    spo2 = fields.Integer(dump_only=True, metadata={"description": "Oxygen saturation, %."})
    temperature = fields.Float(dump_only=True, metadata={"description": "Degrees Celsius."})
    news2_score = fields.Integer(
        allow_none=True,
        dump_only=True,
        metadata={
            "description": "NEWS2 aggregate score (RCP 2017), scored as alert and on room "
            "air; null for samples stored before scoring existed."
        },
    )
    news2_band = fields.String(
        allow_none=True,
        dump_only=True,
        metadata={
            "enum": list(BANDS),
            "description": "NEWS2 clinical risk band.",
        },
    )


class ShownSample(msgspec.Struct, frozen=True):
    """One sample as MetricSchema documents it, its fields in the order of their names
    (monitor_app.json_body). A test holds the two to the same bytes."""

    bp: str
    diastolic: int
    news2_band: str | None
    news2_score: int | None
    pulse: int
    resp_rate: int
    spo2: int
    systolic: int
    temperature: float
    timestamp: str


def shown_samples(rows: Iterable[Sequence[Any]]) -> list[ShownSample]:
    """The samples of rows of monitor_app.metrics.services.SHOWN_COLUMNS (or PAGE_COLUMNS,
    whose timestamps are UTC without a zone: their offset is written here).

    Each row is unpacked as a tuple: naming a Row's columns (`row.pulse`) first fails an
    ordinary attribute lookup, and building those AttributeErrors cost more than the query.
    """
    return [
        ShownSample(
            bp=format_bp(systolic, diastolic),
            diastolic=diastolic,
            news2_band=news2_band,
            news2_score=news2_score,
            pulse=pulse,
            resp_rate=resp_rate,
            spo2=spo2,
            systolic=systolic,
            temperature=float(temperature),
            timestamp=utc_text(timestamp),
        )
        for (
            timestamp,
            pulse,
            resp_rate,
            systolic,
            diastolic,
            spo2,
            temperature,
            news2_score,
            news2_band,
        ) in rows
    ]


def dump_samples(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """`MetricSchema(many=True).dump(rows)`, built directly: marshmallow's dump was the
    largest cost of the samples endpoint. A test holds the two to the same output."""
    return msgspec.to_builtins(shown_samples(rows))


class MetricQueryArgsSchema(Schema):
    """Which samples to list: a half-open time window and a maximum count."""

    # A naive time would be read in some unknown zone; asking for the offset avoids the guess.
    since = Instant(
        data_key="from",
        format="iso",
        metadata={"description": f"Only samples taken at or after this instant. {INSTANT_FORMAT}"},
    )
    until = Instant(
        data_key="to",
        format="iso",
        metadata={
            "description": "Only samples taken strictly before this instant, so the "
            "oldest timestamp of one page is the `to` of the next. " + INSTANT_FORMAT
        },
    )
    limit = fields.Integer(
        load_default=METRICS_LIMIT,
        validate=validate.Range(min=1, max=METRICS_MAX_LIMIT),
        metadata={"description": "Most samples to return (newest first)."},
    )

    @validates_schema
    def _window_is_ordered(self, data: dict[str, Any], **_kwargs: Any) -> None:
        check_window(data, "since", "until", start_key="from", end_key="to")


class MetricExportArgsSchema(Schema):
    """Which samples to export: a half-open window, both ends required, at most
    EXPORT_MAX_SPAN_DAYS long."""

    since = Instant(
        data_key="from",
        format="iso",
        required=True,
        metadata={"description": f"Samples taken at or after this instant. {INSTANT_FORMAT}"},
    )
    until = Instant(
        data_key="to",
        format="iso",
        required=True,
        metadata={
            "description": "Samples taken strictly before this instant, at most "
            f"{EXPORT_MAX_SPAN_DAYS} days after `from`. " + INSTANT_FORMAT
        },
    )

    @validates_schema
    def _window_is_bounded(self, data: dict[str, Any], **_kwargs: Any) -> None:
        # Runs only once both fields have loaded (marshmallow skips it after a field error).
        since, until = data["since"], data["until"]
        if since >= until:
            raise ValidationError("Must be before `to`.", field_name="from")
        if until - since > timedelta(days=EXPORT_MAX_SPAN_DAYS):
            raise ValidationError(
                f"At most {EXPORT_MAX_SPAN_DAYS} days after `from`.", field_name="to"
            )
