"""Storage: bytes per sample on disk (table and indexes), and a simulated month with retention on.

1. Bytes: hours of 1 Hz samples of a ward, written into Vigil's schema (its own migrations) on
   a private PostgreSQL cluster and in an SQLite file, with the per-minute rollups data_app
   keeps. Sizes are PostgreSQL's pg_total_relation_size over every partition (heap, indexes,
   TOAST) and SQLite's dbstat pages of each table and its indexes.
2. Month: day after day on PostgreSQL, a day of samples stored, then data_app's retention pass
   (data_app/retention.py, with RAW_RETENTION_DAYS) run as of that day's end; the sizes after
   each pass show the raw samples level off once the first partitions are dropped while the
   rollups keep growing, a minute per patient at a time. The day is sparser than 1 Hz (the
   figures scale by bytes per row, measured in part 1), so the month takes a minute, not hours.

Rows are generated in SQL (generate_series): this measures what the stored data costs, not how
fast it is stored (that is bench/ingest.py). `python -m bench storage [--quick]`.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from bench.report import Report
from data_app.retention import RetentionPolicy, maintain
from devserver.postgres import PostgresCluster, fresh_database
from shared.db import make_engine, migrate
from shared.models import ROLLED_UP
from shared.partitions import ROLLUPS, SAMPLES

MIB = 1024 * 1024
# A region: the scale, for the projection.
REGION_BEDS = 10_000
SECONDS_PER_DAY = 86_400
MINUTES_PER_DAY = 1_440


@dataclass(frozen=True)
class Sizes:
    sample_rows: int
    sample_bytes: int
    minute_rows: int
    minute_bytes: int


def samples_sql(dialect: str) -> str:
    """INSERT of the samples of patients 1 to `:patients`, every `:step` s from `:start` (UTC,
    without a zone) for `:seconds` s, their values varying as vitals do (what they are barely
    changes a row's size). Also the query benchmark's PostgreSQL databases."""
    noise = "(p * 7 + s) % 13"
    if dialect == "postgresql":
        series = (
            "FROM generate_series(1, :patients) AS p, generate_series(0, :seconds - 1, :step) AS s"
        )
        moment = "CAST(:start AS timestamp) + s * interval '1 second'"
    else:
        series = (
            "FROM (WITH RECURSIVE n(p) AS (SELECT 1 UNION ALL SELECT p + 1 FROM n"
            " WHERE p < :patients) SELECT p FROM n),"
            " (WITH RECURSIVE t(s) AS (SELECT 0 UNION ALL SELECT s + :step FROM t"
            " WHERE s + :step < :seconds) SELECT s FROM t)"
        )
        moment = "strftime('%Y-%m-%d %H:%M:%f000', :start, '+' || s || ' seconds')"
    return (
        "INSERT INTO patient_metrics (patient_id, timestamp, pulse, resp_rate, systolic,"  # noqa: S608
        " diastolic, spo2, temperature, received_at, news2_score, news2_band)"
        f" SELECT p, {moment}, 64 + {noise}, 14 + {noise} % 5, 112 + {noise}, 70 + {noise} % 9,"
        f" 95 + {noise} % 4, 36.5 + ({noise}) / 20.0, {moment}, {noise} % 4, 'low' {series}"
    )


def _rollup_sql(dialect: str) -> str:
    """The rollups of the samples from `:low` to `:high`, as data_app adds them."""
    minute = (
        "date_trunc('minute', \"timestamp\")"
        if dialect == "postgresql"
        # Escaped: text() would read ":00" as a parameter.
        else "substr(\"timestamp\", 1, 16) || '\\:00.000000'"
    )
    statistics, columns = [], []
    for name in ROLLED_UP:
        statistics += [f"min({name})", f"max({name})", f"sum({name})"]
        columns += [f"{name}_min", f"{name}_max", f"{name}_sum"]
    return (
        "INSERT INTO patient_metric_minutes"  # noqa: S608
        f" (patient_id, minute, samples, news2_samples, {', '.join(columns)})"
        f" SELECT patient_id, {minute}, count(*), count(news2_score), {', '.join(statistics)}"
        ' FROM patient_metrics WHERE "timestamp" >= :low AND "timestamp" < :high'
        f" GROUP BY patient_id, {minute}"
    )


def _add_patients(connection: Connection, patients: int, created: datetime) -> None:
    connection.execute(
        text(
            "INSERT INTO patients (id, uuid, name, created_at, alert_band, alert_calm_samples,"
            " sample_count) VALUES (:id, :uuid, :name, :created, 'low', 0, 0)"
        ),
        [
            {"id": n, "uuid": f"{n:032x}", "name": f"Storage Bench {n:05d}", "created": created}
            for n in range(1, patients + 1)
        ],
    )


def _store_day(
    connection: Connection, patients: int, start: datetime, seconds: int, step: int
) -> None:
    dialect = connection.dialect.name
    naive = start.replace(tzinfo=None)
    bounds = {"low": naive, "high": naive + timedelta(seconds=seconds)}
    if dialect == "sqlite":
        bounds = {k: v.strftime("%Y-%m-%d %H:%M:%S.%f") for k, v in bounds.items()}
    first = naive.isoformat(sep=" ") if dialect == "sqlite" else naive
    connection.execute(
        text(samples_sql(dialect)),
        {"patients": patients, "seconds": seconds, "step": step, "start": first},
    )
    connection.execute(text(_rollup_sql(dialect)), bounds)


def _pg_sizes(connection: Connection) -> Sizes:
    def table(name: str) -> tuple[int, int]:
        rows = connection.scalar(text(f"SELECT count(*) FROM {name}"))  # noqa: S608
        size = connection.scalar(
            text(
                "SELECT coalesce(sum(pg_total_relation_size(relid)), 0)"
                " FROM pg_partition_tree(CAST(:name AS regclass))"
            ),
            {"name": name},
        )
        return rows, int(size)

    return Sizes(*table(SAMPLES.name), *table(ROLLUPS.name))


def _sqlite_sizes(path: Path) -> Sizes:
    connection = sqlite3.connect(path)
    try:

        def table(name: str) -> tuple[int, int]:
            rows = connection.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # noqa: S608
            size = connection.execute(
                "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ? OR name IN"
                " (SELECT name FROM sqlite_master WHERE tbl_name = ? AND type = 'index')",
                (name, name),
            ).fetchone()[0]
            return rows, size

        return Sizes(*table(SAMPLES.name), *table(ROLLUPS.name))
    finally:
        connection.close()


def bytes_per_row(patients: int, hours: int, server_url: str) -> dict[str, Sizes]:
    """Part 1: the same 1 Hz samples in both databases."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours)
    seconds = hours * 3600
    found = {}
    with fresh_database(server_url, prefix="vigil_storage") as url:
        engine = make_engine(url)
        try:
            migrate(engine)
            with engine.begin() as connection:
                _add_patients(connection, patients, start)
                _store_day(connection, patients, start, seconds, step=1)
            with engine.connect() as connection:
                found["PostgreSQL"] = _pg_sizes(connection)
        finally:
            engine.dispose()
    with tempfile.TemporaryDirectory(prefix="vigil-storage-") as folder:
        path = Path(folder) / "vigil.db"
        engine = make_engine(f"sqlite:///{path}")
        try:
            migrate(engine)
            with engine.begin() as connection:
                _add_patients(connection, patients, start)
                _store_day(connection, patients, start, seconds, step=1)
        finally:
            engine.dispose()
        found["SQLite"] = _sqlite_sizes(path)
    return found


def month(
    server_url: str, patients: int, days: int, step: int, policy: RetentionPolicy
) -> list[tuple[int, Sizes]]:
    """Part 2: (day, sizes after that day's retention pass) for every day."""
    first_day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=days
    )
    growth = []
    with fresh_database(server_url, prefix="vigil_storage") as url:
        engine: Engine = create_engine(url, poolclass=NullPool)
        try:
            migrate(engine)
            with engine.begin() as connection:
                _add_patients(connection, patients, first_day)
            maintain(engine, policy, now=first_day)
            for day in range(days):
                start = first_day + timedelta(days=day)
                with engine.begin() as connection:
                    _store_day(connection, patients, start, SECONDS_PER_DAY, step)
                maintain(engine, policy, now=start + timedelta(days=1))
                with engine.connect() as connection:
                    growth.append((day + 1, _pg_sizes(connection)))
        finally:
            engine.dispose()
    return growth


def run(quick: bool = False) -> Report:
    patients, hours = (20, 1) if quick else (100, 3)
    month_patients, days, step = (10, 8, 60) if quick else (20, 36, 10)
    policy = (
        RetentionPolicy(raw_days=3, rollup_days=730, days_ahead=2)
        if quick
        else RetentionPolicy(raw_days=30, rollup_days=730, days_ahead=7)
    )
    report = Report(
        "storage",
        "Storage: bytes per sample on disk, and a month with retention on",
        columns=["database", "what", "rows", "MiB", "bytes per row", "bytes per sample"],
        parameters={
            "patients": patients,
            "hours at 1 Hz": hours,
            "month": f"{month_patients} patients, a sample every {step} s, {days} days, "
            f"RAW_RETENTION_DAYS {policy.raw_days}",
        },
    )
    cluster = PostgresCluster()
    cluster.start()
    try:
        started = time.perf_counter()
        sizes = bytes_per_row(patients, hours, cluster.url)
        for database, found in sizes.items():
            per_sample = found.sample_bytes / found.sample_rows
            per_minute = found.minute_bytes / found.minute_rows
            report.add(
                database=database,
                what="samples (table + indexes)",
                rows=found.sample_rows,
                MiB=found.sample_bytes / MIB,
                **{"bytes per row": per_sample, "bytes per sample": per_sample},
            )
            report.add(
                database=database,
                what="per-minute rollups",
                rows=found.minute_rows,
                MiB=found.minute_bytes / MIB,
                **{
                    "bytes per row": per_minute,
                    "bytes per sample": found.minute_bytes / found.sample_rows,
                },
            )
        pg = sizes["PostgreSQL"]
        per_sample, per_minute = pg.sample_bytes / pg.sample_rows, pg.minute_bytes / pg.minute_rows
        growth = month(cluster.url, month_patients, days, step, policy)
        seconds = time.perf_counter() - started
    finally:
        cluster.stop()
    shown = {1, policy.raw_days - 1, policy.raw_days, policy.raw_days + 1, days}
    for day, found in growth:
        if day not in shown:
            continue
        report.add(
            database="PostgreSQL",
            what=f"month, day {day}: samples",
            rows=found.sample_rows,
            MiB=found.sample_bytes / MIB,
        )
        report.add(
            database="PostgreSQL",
            what=f"month, day {day}: rollups",
            rows=found.minute_rows,
            MiB=found.minute_bytes / MIB,
        )
    steady = [found.sample_rows for day, found in growth if day > policy.raw_days]
    level = growth[policy.raw_days - 1][1].sample_rows if len(growth) >= policy.raw_days else 0
    report.notes.append(
        f"Retention levels the raw samples off: {level:,} rows after day {policy.raw_days}, "
        f"{min(steady, default=0):,}–{max(steady, default=0):,} on the days after (each day "
        "stored adds one partition and the pass drops the oldest), while the rollups keep "
        f"growing: {growth[-1][1].minute_rows:,} minute rows after day {days}."
    )
    raw_day = REGION_BEDS * SECONDS_PER_DAY * per_sample
    rollup_day = REGION_BEDS * MINUTES_PER_DAY * per_minute
    report.notes.append(
        f"A region ({REGION_BEDS:,} beds at 1 Hz, {REGION_BEDS * SECONDS_PER_DAY / 1e6:,.0f} M "
        f"samples a day) on PostgreSQL at these sizes: {raw_day / 1e9:,.1f} GB of samples a day, "
        f"{30 * raw_day / 1e12:,.2f} TB kept at RAW_RETENTION_DAYS 30 and then flat; rollups "
        f"{rollup_day / 1e9:,.2f} GB a day, {730 * rollup_day / 1e12:,.2f} TB at "
        "ROLLUP_RETENTION_DAYS 730. A 24 h chart reads 1,440 rollup rows whatever the table's size."
    )
    report.notes.append(
        "What a sample costs on PostgreSQL: a 24-byte row header and 11 columns (the surrogate"
        " id, received_at and the NEWS2 band among them), then two B-tree entries, the primary"
        " key (id, timestamp) and the unique (patient_id, timestamp). Making (patient_id,"
        " timestamp) the key and dropping the id would save one index and 8 bytes a row."
    )
    report.notes.append(f"Built and measured in {seconds:.0f} s.")
    return report


if __name__ == "__main__":
    run().show()
