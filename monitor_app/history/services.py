"""Samples downsampled into time buckets; functions take the caller's session, never commit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Integer, cast, extract, func, select
from sqlalchemy.orm import Session

from shared.models import Patient, PatientMetric

# Each window's bucket width, in seconds: at most 360 buckets, plenty for a trend chart.
WINDOWS = {
    "15m": (timedelta(minutes=15), 5),
    "1h": (timedelta(hours=1), 10),
    "6h": (timedelta(hours=6), 60),
    "24h": (timedelta(hours=24), 240),
}

# The aggregated vitals, each with the decimal places of its average.
VITALS = {
    "pulse": 1,
    "resp_rate": 1,
    "systolic": 1,
    "diastolic": 1,
    "spo2": 1,
    "temperature": 2,
    "news2_score": 1,
}


@dataclass(frozen=True)
class History:
    """A patient's samples in [since, until), summarised per bucket, oldest bucket first."""

    patient_uuid: uuid.UUID
    window: str
    since: datetime
    until: datetime
    bucket_seconds: int
    buckets: list[dict[str, Any]]


def patient_history(session: Session, patient: Patient, window: str, until: datetime) -> History:
    """The patient's vitals over the `window` that ends at `until`, in buckets."""
    span, bucket_seconds = WINDOWS[window]
    until = until.astimezone(UTC)
    since = until - span
    return History(
        patient.uuid,
        window,
        since,
        until,
        bucket_seconds,
        history_buckets(
            session, patient.id, since=since, until=until, bucket_seconds=bucket_seconds
        ),
    )


def history_buckets(
    session: Session, patient_id: int, *, since: datetime, until: datetime, bucket_seconds: int
) -> list[dict[str, Any]]:
    """Count and min/avg/max per bucket of samples in [since, until), in a single query."""
    bucket = _epoch_seconds(session) // bucket_seconds
    per_sample = (
        select(bucket.label("bucket"), *(PatientMetric.__table__.c[name] for name in VITALS))
        .where(
            PatientMetric.patient_id == patient_id,
            PatientMetric.timestamp >= since,
            PatientMetric.timestamp < until,
        )
        .subquery()
    )
    # Grouped by the subquery's column rather than the expression itself, which PostgreSQL
    # would not match with a copy in the select list whose bound parameters are separate.
    aggregates = [
        aggregate(per_sample.c[name]).label(f"{name}_{stat}")
        for name in VITALS
        for stat, aggregate in (("min", func.min), ("avg", func.avg), ("max", func.max))
    ]
    query = (
        select(per_sample.c.bucket, func.count().label("count"), *aggregates)
        .group_by(per_sample.c.bucket)
        .order_by(per_sample.c.bucket)
    )
    return [_bucket(row._mapping, bucket_seconds) for row in session.execute(query)]


def _epoch_seconds(session: Session) -> ColumnElement[int]:
    """Whole seconds from the Unix epoch to a sample's timestamp, stored as naive UTC."""
    if session.get_bind().dialect.name == "sqlite":
        # Stored as text, 'YYYY-MM-DD HH:MM:SS.ffffff'. strftime('%s') would round the fraction
        # to milliseconds (12:00:04.9996 counts as 12:00:05), so it is cut off first.
        return cast(func.strftime("%s", func.substr(PatientMetric.timestamp, 1, 19)), Integer)
    return cast(func.floor(extract("epoch", PatientMetric.timestamp)), BigInteger)


def _bucket(row: Any, bucket_seconds: int) -> dict[str, Any]:
    """One result row as a bucket: its start, sample count and per-vital statistics."""
    return {
        "start": datetime.fromtimestamp(row["bucket"] * bucket_seconds, UTC),
        "count": row["count"],
        **{
            name: {
                "min": row[f"{name}_min"],
                "avg": _rounded(row[f"{name}_avg"], places),
                "max": row[f"{name}_max"],
            }
            for name, places in VITALS.items()
        },
    }


def _rounded(value: Any, places: int) -> float | None:
    """An average rounded half up; PostgreSQL returns it as a Decimal, SQLite as a float."""
    if value is None:
        return None
    return float(Decimal(str(value)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP))
