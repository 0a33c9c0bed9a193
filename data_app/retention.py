"""Keeping the samples tables in shape: partitions made ahead, old data removed.

Raw samples are kept RAW_RETENTION_DAYS and their per-minute rollups ROLLUP_RETENTION_DAYS.
On PostgreSQL a period past its retention goes by dropping its whole partition (instant,
leaving no dead rows to vacuum); only the default partition's few stray rows are deleted.
SQLite, unpartitioned, deletes. Each patient's kept-sample count loses what was removed, in
the same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import Connection, Engine, text

from shared.background import BackgroundThread
from shared.db import db
from shared.partitions import (
    PARTITION_LOCK,
    ROLLUPS,
    SAMPLES,
    PartitionedTable,
    create_partitions,
    existing_partitions,
    partitions_before,
)

log = logging.getLogger(__name__)

# A DROP waits for the queries reading the partition; past this it gives up until next time
# rather than queue every new query behind it.
LOCK_TIMEOUT = "5s"


@dataclass(frozen=True)
class RetentionPolicy:
    raw_days: int
    rollup_days: int
    days_ahead: int

    def __post_init__(self) -> None:
        # A day's partition is uncounted from its rollups, which must still be there.
        if self.rollup_days < self.raw_days:
            raise ValueError(
                f"ROLLUP_RETENTION_DAYS ({self.rollup_days}) must be at least"
                f" RAW_RETENTION_DAYS ({self.raw_days})"
            )

    @classmethod
    def from_config(cls, config: dict) -> RetentionPolicy:
        return cls(
            raw_days=config["RAW_RETENTION_DAYS"],
            rollup_days=config["ROLLUP_RETENTION_DAYS"],
            days_ahead=config["PARTITION_DAYS_AHEAD"],
        )

    def raw_cutoff(self, now: datetime) -> datetime:
        """Samples before this are removed: a whole day, so partitions go whole."""
        return SAMPLES.period_start(now - timedelta(days=self.raw_days))

    def rollup_cutoff(self, now: datetime) -> datetime:
        return SAMPLES.period_start(now - timedelta(days=self.rollup_days))


@dataclass
class Maintained:
    """What one pass did."""

    made: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    deleted_samples: int = 0
    deleted_minutes: int = 0


# Each patient's count loses the samples about to be removed: counted from the rollups for a
# whole partition (a day of a region's samples is far too many to count), from the rows
# themselves for the few elsewhere. (Constant names only; the bounds are parameters.)
_UNCOUNT_MINUTES = text(
    "UPDATE patients SET sample_count = patients.sample_count - gone.n FROM"
    " (SELECT patient_id, sum(samples) AS n FROM patient_metric_minutes"
    "  WHERE minute >= :low AND minute < :high GROUP BY patient_id) AS gone"
    " WHERE patients.id = gone.patient_id"
)


def _uncount_rows(table: str) -> str:
    return (
        "UPDATE patients SET sample_count = patients.sample_count - gone.n FROM"  # noqa: S608
        f' (SELECT patient_id, count(*) AS n FROM "{table}" WHERE "timestamp" < :cutoff'
        "  GROUP BY patient_id) AS gone WHERE patients.id = gone.patient_id"
    )


def maintain(engine: Engine, policy: RetentionPolicy, now: datetime | None = None) -> Maintained:
    """One pass: partitions for the days ahead, then everything past its retention removed."""
    now = now or datetime.now(UTC)
    done = Maintained()
    raw_cutoff, rollup_cutoff = policy.raw_cutoff(now), policy.rollup_cutoff(now)
    if engine.dialect.name != "postgresql":
        with engine.begin() as connection:
            done.deleted_samples = _delete_samples(connection, "patient_metrics", raw_cutoff)
            done.deleted_minutes = _delete_minutes(
                connection, "patient_metric_minutes", rollup_cutoff
            )
        return done
    ahead = [now + timedelta(days=offset) for offset in range(-1, policy.days_ahead + 1)]
    with engine.begin() as connection:
        for table in (SAMPLES, ROLLUPS):
            done.made += create_partitions(connection, table, ahead)
    for table, cutoff in ((SAMPLES, raw_cutoff), (ROLLUPS, rollup_cutoff)):
        with engine.connect() as connection:
            old = partitions_before(connection, table, cutoff)
        for start, end, name in old:
            with engine.begin() as connection:
                if _drop(connection, table, name, start, end):
                    done.dropped.append(name)
    with engine.begin() as connection:
        _locked(connection)
        done.deleted_samples = _delete_samples(connection, SAMPLES.default_partition, raw_cutoff)
        done.deleted_minutes = _delete_minutes(connection, ROLLUPS.default_partition, rollup_cutoff)
    return done


def _locked(connection: Connection) -> None:
    # Whoever else maintains (another data_app) waits, then finds the work done.
    connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PARTITION_LOCK})


def _drop(
    connection: Connection, table: PartitionedTable, name: str, start: datetime, end: datetime
) -> bool:
    """Drop one partition, if still there, with the counts of the samples it held."""
    _locked(connection)
    if name not in existing_partitions(connection, table).values():
        return False
    if table is SAMPLES:
        bounds = {"low": start.replace(tzinfo=None), "high": end.replace(tzinfo=None)}
        connection.execute(_UNCOUNT_MINUTES, bounds)
    connection.execute(text(f'DROP TABLE "{name}"'))
    return True


def _delete_samples(connection: Connection, table: str, cutoff: datetime) -> int:
    bound = {"cutoff": cutoff.replace(tzinfo=None)}
    connection.execute(text(_uncount_rows(table)), bound)
    deleted = connection.execute(
        text(f'DELETE FROM "{table}" WHERE "timestamp" < :cutoff'),  # noqa: S608
        bound,
    )
    return deleted.rowcount


def _delete_minutes(connection: Connection, table: str, cutoff: datetime) -> int:
    deleted = connection.execute(
        text(f'DELETE FROM "{table}" WHERE minute < :cutoff'),  # noqa: S608
        {"cutoff": cutoff.replace(tzinfo=None)},
    )
    return deleted.rowcount


class RetentionJob(BackgroundThread):
    """Runs `maintain` when data_app starts and then every RETENTION_INTERVAL_SECONDS."""

    failure_message = "partition maintenance failed; trying again later"
    retry_delay = 60.0

    def __init__(self, app: Flask) -> None:
        super().__init__("retention")
        self.app = app
        self.policy = RetentionPolicy.from_config(app.config)
        self.interval: float = app.config["RETENTION_INTERVAL_SECONDS"]
        self.last: Maintained | None = None

    def _work(self) -> float:
        done = maintain(db.engine(self.app), self.policy)
        self.last = done
        if done.made or done.dropped or done.deleted_samples or done.deleted_minutes:
            log.info(
                "retention",
                extra={
                    "partitions_made": done.made,
                    "partitions_dropped": done.dropped,
                    "samples_deleted": done.deleted_samples,
                    "minutes_deleted": done.deleted_minutes,
                },
            )
        return self.interval
