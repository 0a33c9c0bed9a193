"""Samples downsampled into time buckets; functions take the caller's session, never commit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any

import msgspec
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Row,
    Select,
    bindparam,
    cast,
    extract,
    func,
    select,
)
from sqlalchemy.orm import Session

from shared.models import PatientMetric, patient_metric_minutes

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


class Stats(msgspec.Struct, frozen=True):
    """Lowest, mean and highest of one vital in a bucket; all None if none was measured.

    Its fields are in the order of the names they are shown under (avg, max, min), the
    order Flask's JSON provider (which sorts keys) writes them in, so msgspec writes the
    same bytes (monitor_app.history.schemas).
    """

    avg: float | None
    highest: int | float | None = msgspec.field(name="max")
    lowest: int | float | None = msgspec.field(name="min")


@dataclass(frozen=True, slots=True)
class Bucket:
    """The samples of one bucket: its start, how many, and per vital their statistics."""

    start: datetime
    count: int
    pulse: Stats
    resp_rate: Stats
    systolic: Stats
    diastolic: Stats
    spo2: Stats
    temperature: Stats
    news2_score: Stats


@dataclass(frozen=True)
class History:
    """A patient's samples in [since, until), summarised per bucket, oldest bucket first."""

    patient_uuid: uuid.UUID
    window: str
    since: datetime
    until: datetime
    bucket_seconds: int
    buckets: list[Bucket]


def patient_history(
    session: Session, patient_id: int, patient_uuid: uuid.UUID, window: str, until: datetime
) -> History:
    """The patient's vitals over the `window` that ends at `until`, in buckets."""
    span, bucket_seconds = WINDOWS[window]
    until = until.astimezone(UTC)
    since = until - span
    return History(
        patient_uuid,
        window,
        since,
        until,
        bucket_seconds,
        history_buckets(
            session, patient_id, since=since, until=until, bucket_seconds=bucket_seconds
        ),
    )


# Windows this long or longer are summed from the per-minute rollups (shared/models.py), so
# a day's chart costs the same whatever the table holds: 1,440 rows, not 86,400 samples.
ROLLUPS_FROM = timedelta(hours=6)
MINUTE = timedelta(minutes=1)


def history_buckets(
    session: Session, patient_id: int, *, since: datetime, until: datetime, bucket_seconds: int
) -> list[Bucket]:
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
Partial = tuple[Any, ...] | Row


def _sample_partials(
    session: Session, patient_id: int, since: datetime, until: datetime, bucket_seconds: int
) -> list[Partial]:
    return _partials(session, "samples", patient_id, since, until, bucket_seconds)


def _rollup_partials(
    session: Session, patient_id: int, since: datetime, until: datetime, bucket_seconds: int
) -> list[Partial]:
    return _partials(session, "rollups", patient_id, since, until, bucket_seconds)


def _partials(
    session: Session,
    source: str,
    patient_id: int,
    since: datetime,
    until: datetime,
    bucket_seconds: int,
) -> list[Partial]:
    if since >= until:
        return []
    statement = _statements(session.get_bind().dialect.name)[source]
    values = {
        "patient_id": patient_id,
        "since": since,
        "until": until,
        "bucket_seconds": bucket_seconds,
    }
    return session.execute(statement, values).all()


@cache
def _statements(dialect: str) -> dict[str, Select]:
    """The statements of the samples' and the rollups' partials on this dialect, built once
    with bound parameters: building them and their cache keys on every request cost more
    than running them."""
    return {"samples": _samples_statement(dialect), "rollups": _rollups_statement(dialect)}


def _samples_statement(dialect: str) -> Select:
    table = PatientMetric.__table__
    bucket = _epoch_seconds(dialect, table.c.timestamp) // _BUCKET_SECONDS
    per_sample = (
        select(bucket.label("bucket"), *(table.c[name] for name in VITALS))
        .where(
            table.c.patient_id == bindparam("patient_id"),
            table.c.timestamp >= bindparam("since"),
            table.c.timestamp < bindparam("until"),
        )
        .subquery()
    )
    # Grouped by the subquery's column rather than the expression itself, which PostgreSQL
    # would not match with a copy in the select list whose bound parameters are separate.
    columns = per_sample.c
    statistics = [
        aggregate(columns[name]) for name in VITALS for aggregate in (func.min, func.max, func.sum)
    ]
    return select(
        columns.bucket, func.count(), func.count(columns.news2_score), *statistics
    ).group_by(columns.bucket)


def _rollups_statement(dialect: str) -> Select:
    table = patient_metric_minutes
    bucket = _epoch_seconds(dialect, table.c.minute) // _BUCKET_SECONDS
    per_minute = (
        select(bucket.label("bucket"), *(c for c in table.c if c.name not in ("patient_id",)))
        .where(
            table.c.patient_id == bindparam("patient_id"),
            table.c.minute >= bindparam("since"),
            table.c.minute < bindparam("until"),
        )
        .subquery()
    )
    columns = per_minute.c
    statistics = [
        aggregate(columns[f"{name}_{stat}"])
        for name in VITALS
        for stat, aggregate in (("min", func.min), ("max", func.max), ("sum", func.sum))
    ]
    return select(
        columns.bucket, func.sum(columns.samples), func.sum(columns.news2_samples), *statistics
    ).group_by(columns.bucket)


_BUCKET_SECONDS = bindparam("bucket_seconds", type_=Integer)


def _epoch_seconds(dialect: str, column: ColumnElement[datetime]) -> ColumnElement[int]:
    """Whole seconds from the Unix epoch to a time stored as naive UTC."""
    if dialect == "sqlite":
        # Stored as text, 'YYYY-MM-DD HH:MM:SS.ffffff'. strftime('%s') would round the fraction
        # to milliseconds (12:00:04.9996 counts as 12:00:05), so it is cut off first.
        return cast(func.strftime("%s", func.substr(column, 1, 19)), Integer)
    return cast(func.floor(extract("epoch", column)), BigInteger)


def _merged(partials: list[Partial], bucket_seconds: int) -> list[Bucket]:
    """The buckets, oldest first, each summing its partials."""
    by_bucket: dict[int, Partial] = {}
    for partial in partials:
        known = by_bucket.get(partial[0])
        by_bucket[partial[0]] = partial if known is None else _summed(known, partial)
    return [_bucket(by_bucket[bucket], bucket_seconds) for bucket in sorted(by_bucket)]


def _summed(a: Partial, b: Partial) -> Partial:
    """One partial of two of the same bucket."""
    summed = [a[0], a[1] + b[1], a[2] + b[2]]
    for at in range(3, len(a), 3):
        summed += (
            _lowest(a[at], b[at]),
            _highest(a[at + 1], b[at + 1]),
            (a[at + 2] or 0) + (b[at + 2] or 0),
        )
    return tuple(summed)


def _lowest(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


def _highest(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else max(a, b)


# Per vital in VITALS' order: where its lowest, highest and sum are in a partial, the places
# of its mean, whether that is over the scored samples only, and whether it is shown as a float.
_LAYOUT = tuple(
    (3 + 3 * index, places, name == "news2_score", name == "temperature")
    for index, (name, places) in enumerate(VITALS.items())
)


def _bucket(partial: Partial, bucket_seconds: int) -> Bucket:
    """One bucket: its start, sample count and per-vital statistics."""
    bucket, count, scored = partial[0], partial[1], partial[2]
    stats = []
    for at, places, of_scored, is_float in _LAYOUT:
        low, high, total = partial[at], partial[at + 1], partial[at + 2]
        if is_float and low is not None:
            low, high = float(low), float(high)
        stats.append(Stats(_mean(total, scored if of_scored else count, places), high, low))
    return Bucket(datetime.fromtimestamp(bucket * bucket_seconds, UTC), count, *stats)


def _mean(total: Any, samples: int, places: int) -> float | None:
    """`total / samples` rounded half up to `places` decimal places; None of no samples.

    A whole-number total (every vital but temperature, on SQLite) is rounded exactly in
    integers, which gives what rounding the float quotient's decimal form gives (a test holds
    the two equal) at a fraction of the cost of a Decimal per vital and bucket.
    """
    if not samples or total is None:
        return None
    if type(total) is int and total >= 0:
        scale = 10**places
        return ((2 * scale * total + samples) // (2 * samples)) / scale
    return _rounded(total / samples, places)


def _rounded(value: Any, places: int) -> float | None:
    """An average rounded half up; PostgreSQL returns it as a Decimal, SQLite as a float."""
    if value is None:
        return None
    return float(Decimal(str(value)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP))
