"""Query on PostgreSQL under live ingest: monitor_app's read endpoints on a small and a large
partitioned table while simulated patients stream in through Kafka and data_app.

A private PostgreSQL cluster holds each database: Vigil's migrations (samples partitioned by
day), then `patients × samples` rows written in SQL (generate_series, 5-s spacing ending now)
with their per-minute rollups and counts computed as data_app keeps them
(shared/rollups.py). monitor_app is served as the Procfile serves it and loaded by wrk as in
bench/query.py, while a broker, data_app and a simulator of LIVE_PATIENTS patients at 1 Hz
keep writing into the same database. The workers' CPU per request is read from /proc.

`python -m bench query_postgres [--quick]`; BENCH_QUERY_PG_PATIENTS (e.g. "50,5000,50000")
overrides the sizes (50,000 patients is the 50 M-row database).
"""

from __future__ import annotations

import os
import random
import shutil
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.pool import NullPool

from bench import query_profile
from bench.query import COLUMNS, METRICS, THREADS, WORKERS, http_row, load, run_wrk
from bench.report import Report
from bench.stack import Stack
from bench.storage import samples_sql
from devserver.postgres import PostgresCluster, fresh_database
from shared.db import migrate
from shared.models import PatientMetric
from shared.rollups import rebuild_statements

SAMPLE_SECONDS = 5
SAMPLES_PER_PATIENT = 1_000
HISTORY = "history?window=24h"


@dataclass(frozen=True)
class Sizes:
    patients: tuple[int, ...] = (50, 5_000)
    seconds: int = 20
    connections: int = 16
    live_patients: int = 500


QUICK = Sizes(patients=(20, 200), seconds=3, live_patients=50)


@dataclass(frozen=True)
class PgDatabase:
    url: str
    patients: int
    until: str
    build_seconds: float

    @property
    def rows(self) -> int:
        return self.patients * SAMPLES_PER_PATIENT

    def uuids(self) -> list[str]:
        engine = create_engine(self.url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                found = connection.execute(text("SELECT uuid FROM patients ORDER BY id"))
                return [str(value) for (value,) in found]
        finally:
            engine.dispose()


def build(url: str, patients: int) -> PgDatabase:
    """Vigil's schema and `patients` × SAMPLES_PER_PATIENT samples ending a few seconds ago."""
    started = time.perf_counter()
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2 * SAMPLE_SECONDS)
    start = end - timedelta(seconds=SAMPLE_SECONDS * (SAMPLES_PER_PATIENT - 1))
    engine = create_engine(url, poolclass=NullPool)
    try:
        migrate(engine)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO patients (uuid, name, created_at, alert_band,"
                    " alert_calm_samples, sample_count)"
                    " SELECT md5('query-bench-' || p)::uuid,"
                    " 'Query Bench ' || lpad(p::text, 6, '0'), :start, 'low', 0, 0"
                    " FROM generate_series(1, :patients) AS p"
                ),
                {"patients": patients, "start": start},
            )
            connection.execute(
                text(samples_sql("postgresql")),
                {
                    "patients": patients,
                    "seconds": SAMPLE_SECONDS * SAMPLES_PER_PATIENT,
                    "step": SAMPLE_SECONDS,
                    "start": start.replace(tzinfo=None),
                },
            )
            for statement in rebuild_statements("postgresql"):
                connection.exec_driver_sql(statement)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
    until = (end + timedelta(seconds=SAMPLE_SECONDS)).isoformat().replace("+00:00", "Z")
    return PgDatabase(url, patients, until, time.perf_counter() - started)


def _stored(url: str) -> int:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(PatientMetric)) or 0
    finally:
        engine.dispose()


def measure(db: PgDatabase, sizes: Sizes, report: Report) -> dict[str, dict[str, Any]]:
    uuids = db.uuids()
    random.Random(7).shuffle(uuids)  # noqa: S311  (an order, not a secret)
    workloads = {
        METRICS: [f"/api/v1/patient/{u}/metrics?limit=100" for u in uuids],
        HISTORY: [f"/api/v1/patient/{u}/history?window=24h&to={db.until}" for u in uuids],
        "patients (cached)": ["/api/v1/patients"],
    }
    served: dict[str, dict[str, Any]] = {}
    with Stack("query-pg", DATABASE_URL=db.url) as stack:
        stack.start_redis()
        stack.start_broker()
        token = stack.admin_token()
        stack.start_data()
        stack.start_patients("Live Ingest", sizes.live_patients, 1.0)
        url = stack.start_monitor(workers=WORKERS, threads=THREADS)
        mixed = [path for paths in workloads.values() for path in paths[:500]]
        run_wrk(url, mixed, 1, sizes.connections, stack.folder, token)
        workers = query_profile.worker_pids(stack.processes.running["monitor"].pid)
        for name, paths in workloads.items():
            seconds = max(2, sizes.seconds // 4) if "cached" in name else sizes.seconds
            stored_before, started = _stored(db.url), time.monotonic()
            figures, cpu = load(url, workers, paths, seconds, sizes, stack.folder, token)
            ingest = (_stored(db.url) - stored_before) / (time.monotonic() - started)
            stack.check_running()
            served[name] = figures
            report.add(
                **http_row(
                    db.rows, name, f"HTTP, live ingest {ingest:,.0f} samples/s", figures, cpu
                )
            )
    return served


def run(quick: bool = False) -> Report:
    sizes = QUICK if quick else Sizes()
    if override := os.environ.get("BENCH_QUERY_PG_PATIENTS"):
        sizes = replace(sizes, patients=tuple(int(n) for n in override.split(",")))
    if shutil.which("wrk") is None:
        raise RuntimeError("the query benchmark needs wrk: apt-get install -y wrk")
    report = Report(
        "query_postgres",
        "Query on PostgreSQL under live ingest: monitor_app read endpoints",
        COLUMNS,
        parameters={
            "connections": sizes.connections,
            "seconds per endpoint": sizes.seconds,
            "samples per patient": SAMPLES_PER_PATIENT,
            "live patients at 1 Hz": sizes.live_patients,
        },
    )
    served: dict[int, dict[str, dict[str, Any]]] = {}
    cluster = PostgresCluster()
    cluster.start()
    try:
        for patients in sizes.patients:
            with fresh_database(cluster.url, prefix=f"vigil_query_{uuid.uuid4().hex[:6]}") as url:
                db = build(url, patients)
                report.parameters[f"build s ({db.rows:,} rows)"] = round(db.build_seconds, 1)
                served[db.rows] = measure(db, sizes, report)
    finally:
        cluster.stop()
    small, large = min(served), max(served)
    report.target(
        f"metrics endpoint p99 at {large:,} rows under live ingest, ms",
        served[large][METRICS]["p99_ms"],
        25.0,
        higher_is_better=False,
    )
    report.target(
        f"24 h history p99 at {large:,} rows ÷ at {small:,} rows (≤ 1.5: from the rollups, "
        "whatever the table's size)",
        served[large][HISTORY]["p99_ms"] / served[small][HISTORY]["p99_ms"],
        1.5,
        higher_is_better=False,
    )
    report.notes += [
        f"While wrk runs, {sizes.live_patients:,} simulated patients send a sample a second "
        "through the broker to data_app, which stores them into the same "
        "database; the path column gives the rate stored during each run.",
        f"wrk, monitor_app, data_app, the broker, the simulator and PostgreSQL share this "
        f"machine's {os.cpu_count()} cores.",
    ]
    return report


if __name__ == "__main__":
    run().show()
