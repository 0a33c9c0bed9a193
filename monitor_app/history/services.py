"""Samples downsampled into time buckets; functions take the caller's session, never commit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Integer, cast, extract, func, select
from sqlalchemy.orm import Session

from shared.models import Patient, PatientMetric, patient_metric_minutes

# Each window's bucket width, in seconds: at most 360 buckets, plenty for a trend chart.
WINDOWS = {
    "15m": (timedelta(minutes=15), 5),
    "1h": (timedelta(hours=1), 10),
    "6h": (timedelta(hours=6), 60),
    "24h": (timedelta(hours=24), 240),
    "7d": (timedelta(days=7), 1800),
    "30d": (timedelta(days=30), 10800),
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


# Windows this long or longer are summed from the per-minute rollups (shared/models.py), so
# a day's chart costs the same whatever the table holds: 1,440 rows, not 86,400 samples.
ROLLUPS_FROM = timedelta(hours=6)
MINUTE = timedelta(minutes=1)


def history_buckets(
    session: Session, patient_id: int, *, since: datetime, until: datetime, bucket_seconds: int
) -> list[dict[str, Any]]:
    """Count and min/avg/max per bucket of samples in [since, until).

    From the samples themselves, or, for a long window of whole-minute buckets, from the
    rollups of its whole minutes and the samples of the part-minutes at either end: the same
    buckets either way.
    """
    if until - since < ROLLUPS_FROM or bucket_seconds % 60:
        partials = _sample_partials(session, patient_id, since, until, bucket_seconds)
    else:
        first, last = _ceil_minute(since), _floor_minute(until)
        partials = [
            *_sample_partials(session, patient_id, since, first, bucket_seconds),
            *_rollup_partials(session, patient_id, first, last, bucket_seconds),
            *_sample_partials(session, patient_id, last, until, bucket_seconds),
        ]
    return _merged(partials, bucket_seconds)


def _floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _ceil_minute(moment: datetime) -> datetime:
    floor = _floor_minute(moment)
    return floor if floor == moment else floor + MINUTE


# A partial bucket, as both sources give it: the bucket number, the samples and the scored
# samples in it, then per vital its lowest, highest and sum.
Partial = tuple[Any, ...]


def _sample_partials(
    session: Session, patient_id: int, since: datetime, until: datetime, bucket_seconds: int
) -> list[Partial]:
    if since >= until:
        return []
    table = PatientMetric.__table__
    bucket = _epoch_seconds(session, table.c.timestamp) // bucket_seconds
    per_sample = (
        select(bucket.label("bucket"), *(table.c[name] for name in VITALS))
        .where(
            table.c.patient_id == patient_id,
            table.c.timestamp >= since,
            table.c.timestamp < until,
        )
        .subquery()
    )
    # Grouped by the subquery's column rather than the expression itself, which PostgreSQL
    # would not match with a copy in the select list whose bound parameters are separate.
    columns = per_sample.c
    statistics = [
        aggregate(columns[name]) for name in VITALS for aggregate in (func.min, func.max, func.sum)
    ]
    query = select(
        columns.bucket, func.count(), func.count(columns.news2_score), *statistics
    ).group_by(columns.bucket)
    return [tuple(row) for row in session.execute(query)]


def _rollup_partials(
    session: Session, patient_id: int, since: datetime, until: datetime, bucket_seconds: int
) -> list[Partial]:
    if since >= until:
        return []
    table = patient_metric_minutes
    bucket = _epoch_seconds(session, table.c.minute) // bucket_seconds
    per_minute = (
        select(bucket.label("bucket"), *(c for c in table.c if c.name not in ("patient_id",)))
        .where(table.c.patient_id == patient_id, table.c.minute >= since, table.c.minute < until)
        .subquery()
    )
    columns = per_minute.c
    statistics = [
        aggregate(columns[f"{name}_{stat}"])
        for name in VITALS
        for stat, aggregate in (("min", func.min), ("max", func.max), ("sum", func.sum))
    ]
    query = select(
        columns.bucket, func.sum(columns.samples), func.sum(columns.news2_samples), *statistics
    ).group_by(columns.bucket)
    return [tuple(row) for row in session.execute(query)]


def _merged(partials: list[Partial], bucket_seconds: int) -> list[dict[str, Any]]:
    """The buckets, oldest first, each summing its partials."""
    by_bucket: dict[int, list[Any]] = {}
    for bucket, count, scored, *statistics in partials:
        merged = by_bucket.get(bucket)
        if merged is None:
            by_bucket[bucket] = [count, scored, *statistics]
            continue
        merged[0] += count
        merged[1] += scored
        for index in range(0, len(statistics), 3):
            low, high, total = statistics[index : index + 3]
            at = 2 + index
            merged[at] = _lowest(merged[at], low)
            merged[at + 1] = _highest(merged[at + 1], high)
            merged[at + 2] = (merged[at + 2] or 0) + (total or 0)
    return [_bucket(bucket, by_bucket[bucket], bucket_seconds) for bucket in sorted(by_bucket)]


def _lowest(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


def _highest(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else max(a, b)


def _epoch_seconds(session: Session, column: ColumnElement[datetime]) -> ColumnElement[int]:
    """Whole seconds from the Unix epoch to a time stored as naive UTC."""
    if session.get_bind().dialect.name == "sqlite":
        # Stored as text, 'YYYY-MM-DD HH:MM:SS.ffffff'. strftime('%s') would round the fraction
        # to milliseconds (12:00:04.9996 counts as 12:00:05), so it is cut off first.
        return cast(func.strftime("%s", func.substr(column, 1, 19)), Integer)
    return cast(func.floor(extract("epoch", column)), BigInteger)


def _bucket(bucket: int, merged: list[Any], bucket_seconds: int) -> dict[str, Any]:
    """One bucket: its start, sample count and per-vital statistics."""
    count, scored, *statistics = merged
    stats = {}
    for index, (name, places) in enumerate(VITALS.items()):
        low, high, total = statistics[3 * index : 3 * index + 3]
        samples = scored if name == "news2_score" else count
        stats[name] = {
            "min": low,
            "avg": _rounded(total / samples, places) if samples else None,
            "max": high,
        }
    return {
        "start": datetime.fromtimestamp(bucket * bucket_seconds, UTC),
        "count": count,
        **stats,
    }


def _rounded(value: Any, places: int) -> float | None:
    """An average rounded half up; PostgreSQL returns it as a Decimal, SQLite as a float."""
    if value is None:
        return None
    return float(Decimal(str(value)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP))
