"""Query on PostgreSQL under live ingest: monitor_app's read endpoints on a small and a large
partitioned table while simulated patients stream in through Kafka and data_app.

Each database is Vigil's migrations (samples partitioned by day), then `patients × samples`
rows written in SQL (generate_series, 5-s spacing) with their per-minute rollups and counts
computed as data_app keeps them (shared/rollups.py). It is built once, in a PostgreSQL cluster
kept under var/bench, and each run measures a copy of it (bench/query_pg_data.py).
monitor_app is served as the Procfile serves it and loaded by wrk as in bench/query.py, while
a broker, data_app and a simulator of LIVE_PATIENTS patients at 1 Hz keep writing into it.
The workers' CPU per request is read from /proc.

`python -m bench query_postgres [--quick]`; BENCH_QUERY_PG_PATIENTS (e.g. "50,5000,50000")
overrides the sizes. 50,000 patients is the 50 M-row database, left out of the default run
(and so of `make bench`): its first build took 28 min on this 2-core machine (shared, under
load), where the whole of `make bench` takes about 20, and it holds 9.2 GB, twice that while
a run measures its copy (which takes under a minute). Once built it is kept, and later runs
with it add only that copy and its measurement.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import create_engine, func, select
from sqlalchemy.pool import NullPool

from bench import query_profile
from bench.query import (
    COLUMNS,
    METRICS,
    METRICS_P99_MS,
    WORKERS,
    floors,
    http_row,
    latency_bound,
    load,
    run_wrk,
)
from bench.query_floor import PostgresDriver, capture_sql
from bench.query_pg_data import (
    SAMPLES_PER_PATIENT,
    PgDatabase,
    describe,
    drop_stale,
    kept_cluster,
    working_copy,
)
from bench.report import Report
from bench.stack import Stack
from shared.models import PatientMetric

HISTORY = "history?window=24h"
HISTORY_RATIO = 1.5
FLOOR_PATH = "SQL floor (psycopg)"
FLOOR_SECONDS = 3.0


@dataclass(frozen=True)
class Sizes:
    patients: tuple[int, ...] = (50, 5_000)
    seconds: int = 20
    connections: int = 16
    live_patients: int = 500


QUICK = Sizes(patients=(20, 200), seconds=3, live_patients=50)


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
        # The endpoints' own statements through psycopg, before the ingest starts.
        captured = capture_sql(
            db.url,
            {**stack.redis_settings, **stack.key_settings()},
            token,
            {name: paths for name, paths in workloads.items() if "cached" not in name},
        )
        floor = floors(
            report, db.rows, captured, lambda: PostgresDriver(db.url), FLOOR_PATH, FLOOR_SECONDS
        )
        stack.start_data()
        stack.start_patients("Live Ingest", sizes.live_patients, 1.0)
        # As the Procfile serves it: gevent's worker, psycopg waiting on the event loop.
        url = stack.start_monitor(workers=WORKERS)
        mixed = [path for paths in workloads.values() for path in paths[:500]]
        run_wrk(url, mixed, 1, sizes.connections, stack.folder, token)
        workers = query_profile.worker_pids(stack.processes.running["monitor"].pid)
        for name, paths in workloads.items():
            seconds = max(2, sizes.seconds // 4) if "cached" in name else sizes.seconds
            stored_before, started = _stored(db.url), time.monotonic()
            figures, cpu = load(url, workers, paths, seconds, sizes, stack.folder, token)
            ingest = (_stored(db.url) - stored_before) / (time.monotonic() - started)
            stack.check_running()
            served[name] = {
                **figures,
                "cpu_ms": cpu.get("server CPU ms/req"),
                "floor": floor.get(name),
            }
            report.add(
                **http_row(db.rows, name, f"HTTP (gevent), ingest {ingest:,.0f}/s", figures, cpu)
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
    with kept_cluster() as cluster:
        for name in drop_stale(cluster.url):
            print(f"Dropped {name}: not its size's recipe any more, unfinished or too old")
        for patients in sizes.patients:
            with working_copy(cluster.url, patients) as db:
                report.parameters[f"build s ({db.rows:,} rows)"] = db.kept.build_seconds
                report.notes.append(f"{describe(db)}.")
                served[db.rows] = measure(db, sizes, report)
    small, large = min(served), max(served)
    report.target(
        f"metrics endpoint p99 at {large:,} rows under live ingest, ms",
        served[large][METRICS]["p99_ms"],
        METRICS_P99_MS,
        higher_is_better=False,
    )
    if served[large][METRICS]["p99_ms"] > METRICS_P99_MS:
        report.notes.append(latency_bound(served[large][METRICS], sizes.connections))
    history_ratio = served[large][HISTORY]["p99_ms"] / served[small][HISTORY]["p99_ms"]
    report.target(
        f"24 h history p99 at {large:,} rows ÷ at {small:,} rows (≤ {HISTORY_RATIO}: from the "
        "rollups, whatever the table's size)",
        history_ratio,
        HISTORY_RATIO,
        higher_is_better=False,
    )
    if history_ratio > HISTORY_RATIO:
        report.notes.append(history_bound(served[small][HISTORY], served[large][HISTORY]))
    report.notes += [
        f"While wrk runs, {sizes.live_patients:,} simulated patients send a sample a second "
        "through the broker to data_app, which stores them into the same "
        "database; the path column gives the rate stored during each run. monitor_app runs "
        "as the Procfile serves it: two gunicorn workers on gevent's worker class.",
        f"wrk, monitor_app, data_app, the broker, the simulator and PostgreSQL share this "
        f"machine's {os.cpu_count()} cores.",
    ]
    return report


def history_bound(small: dict[str, Any], large: dict[str, Any]) -> str:
    """Whether the table's size or the wait for the cores made the larger p99 of the two."""
    floor_small, floor_large = small["floor"], large["floor"]
    return (
        "What bounds the 24 h history ratio: its statements through psycopg alone (the SQL "
        f"floor rows, before the ingest) take p50 {floor_small['p50']:.2f} → "
        f"{floor_large['p50']:.2f} ms and p99 {floor_small['p99']:.2f} → "
        f"{floor_large['p99']:.2f} ms from the small table to the large one; served, the p50 "
        f"went {small['p50_ms']:.0f} → {large['p50_ms']:.0f} ms and the workers' CPU "
        f"{small['cpu_ms']:.1f} → {large['cpu_ms']:.1f} ms a request. Where the floor holds "
        f"and the p99 does not, the tail is requests waiting for the {os.cpu_count()} cores, "
        "which monitor_app shares with the ingest, the simulator, PostgreSQL and wrk."
    )


if __name__ == "__main__":
    run().show()
