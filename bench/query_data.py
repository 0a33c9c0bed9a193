"""SQLite databases of the query benchmark: Vigil's schema, filled fast, cached under var/bench.

The schema comes from Vigil's own migrations, so monitor_app starts on the file as on a
production database (its migration finds nothing to do). The rows are written by sqlite3
`executemany` in one transaction, in (patient, time) order: the unique (patient_id,
timestamp) index, which SQLite keeps inside the table's definition and so cannot be dropped
and rebuilt, then only ever grows at its right edge, like the rowid.

A built file is kept under var/bench/query-db/, named by its size and a digest of the
migrations and of this builder, so a re-run skips the build and any schema change rebuilds.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

from bench import BENCH_ID_SECRET
from bench.report import OUTPUT_DIR
from patient_app.patients import patient_uuid_for
from patient_app.physiology import PatientPhysiology
from shared.db import MIGRATIONS_DIR, make_engine, migrate
from shared.news2 import score_news2
from shared.rollups import rebuild_statements

CACHE_DIR = OUTPUT_DIR / "query-db"
# Bumped whenever the rows this module writes change, so cached files are rebuilt.
BUILDER_VERSION = "4"
SAMPLE_SECONDS = 5
# Distinct physiology traces; patient n follows trace n mod TRACES. One in ten is abnormal.
TRACES = 100
ABNORMAL = ("tachycardia", "hypoxia", "sepsis", "hypotension", "hypertension", "deteriorating")
# As SQLAlchemy stores a UTC datetime on SQLite: without a zone, with microseconds.
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
INSERT_CHUNK = 100_000


@dataclass(frozen=True)
class Database:
    """A built database file and what the benchmark needs to know about it."""

    path: Path
    patients: int
    samples_per_patient: int
    # Just after the newest sample: the `to` that puts every sample in a 24-h history window.
    until: str
    build_seconds: float
    cached: bool  # built by an earlier run

    @property
    def rows(self) -> int:
        return self.patients * self.samples_per_patient

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def uuids(self) -> list[str]:
        with sqlite3.connect(self.path) as connection:
            return [
                str(uuid.UUID(hex_))
                for (hex_,) in connection.execute("SELECT uuid FROM patients ORDER BY id")
            ]


def schema_digest() -> str:
    """Changes whenever a migration or this builder does."""
    digest = hashlib.sha256(BUILDER_VERSION.encode())
    for path in sorted(MIGRATIONS_DIR.rglob("*.py")):
        digest.update(path.relative_to(MIGRATIONS_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def database(patients: int, samples_per_patient: int) -> Database:
    """The cached database of this size, built first if there is none for this schema."""
    stem = f"vigil-{patients}x{samples_per_patient}-{schema_digest()}"
    path, facts = CACHE_DIR / f"{stem}.db", CACHE_DIR / f"{stem}.json"
    if path.exists() and facts.exists():
        known = json.loads(facts.read_text())
        return Database(
            path, patients, samples_per_patient, known["until"], known["build_seconds"], cached=True
        )
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for stale in CACHE_DIR.glob(f"vigil-{patients}x{samples_per_patient}-*"):
        stale.unlink()
    started = time.perf_counter()
    # Built beside its final name and renamed, so an interrupted build is never reused.
    building = path.with_suffix(".building")
    building.unlink(missing_ok=True)
    until = _build(building, patients, samples_per_patient)
    building.rename(path)
    Path(f"{building}.migrate.lock").unlink(missing_ok=True)  # left by shared.db.migrate
    seconds = time.perf_counter() - started
    facts.write_text(json.dumps({"until": until, "build_seconds": round(seconds, 2)}) + "\n")
    return Database(path, patients, samples_per_patient, until, seconds, cached=False)


def _build(path: Path, patients: int, samples_per_patient: int) -> str:
    engine = make_engine(f"sqlite:///{path}")
    try:
        migrate(engine)
    finally:
        engine.dispose()
    # Every trace's newest sample (`end` plus its offset) a few seconds in the past.
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2 * SAMPLE_SECONDS)
    start = end - timedelta(seconds=SAMPLE_SECONDS * (samples_per_patient - 1))
    traces = [_trace(index, start, samples_per_patient) for index in range(min(TRACES, patients))]
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        # Nothing to protect while building: a crash leaves a `.building` file nobody uses.
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-262144")  # 256 MiB of page cache
        connection.execute("BEGIN")
        created = start.strftime(SQLITE_TIME)
        connection.executemany(
            "INSERT INTO patients (id, uuid, name, created_at, alert_band, alert_calm_samples)"
            " VALUES (?, ?, ?, ?, 'low', 0)",
            (
                (n, patient_uuid_for(_name(n), BENCH_ID_SECRET).hex, _name(n), created)
                for n in range(1, patients + 1)
            ),
        )
        rows = ((n, *sample) for n in range(1, patients + 1) for sample in traces[n % len(traces)])
        insert = (
            "INSERT INTO patient_metrics (patient_id, timestamp, pulse, resp_rate, "
            "systolic, diastolic, spo2, temperature, received_at, news2_score, "
            "news2_band) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        while chunk := list(islice(rows, INSERT_CHUNK)):
            connection.executemany(insert, chunk)
        # The rollups and counts data_app would have kept while storing these samples.
        for statement in rebuild_statements("sqlite"):
            connection.execute(statement)
        connection.execute("COMMIT")
        # The journal mode Vigil's engine sets anyway; leaves the file ready for readers.
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()
    return (end + timedelta(seconds=SAMPLE_SECONDS)).isoformat().replace("+00:00", "Z")


def _name(n: int) -> str:
    return f"Query Bench {n:05d}"


def _trace(index: int, start: datetime, samples: int) -> list[tuple]:
    """One patient's samples from patient_app's physiology model, scored as data_app scores."""
    scenario = ABNORMAL[index // 10 % len(ABNORMAL)] if index % 10 == 9 else "normal"
    physiology = PatientPhysiology(scenario, seed=index)
    # Bedside monitors are not in step: each trace has its own offset within the interval.
    offset = timedelta(milliseconds=index * 4999 // TRACES)
    trace = []
    for i in range(samples):
        v = physiology.step(SAMPLE_SECONDS)
        taken = start + offset + timedelta(seconds=SAMPLE_SECONDS * i)
        news2 = score_news2(
            resp_rate=v.resp_rate,
            spo2=v.spo2,
            systolic=v.systolic,
            pulse=v.pulse,
            temperature=v.temperature,
        )
        trace.append(
            (
                taken.strftime(SQLITE_TIME),
                v.pulse,
                v.resp_rate,
                v.systolic,
                v.diastolic,
                v.spo2,
                v.temperature,
                (taken + timedelta(milliseconds=180)).strftime(SQLITE_TIME),
                news2.score,
                news2.band,
            )
        )
    return trace


if __name__ == "__main__":
    for size in os.environ.get("BENCH_QUERY_PATIENTS", "50,5000").split(","):
        built = database(int(size), 1000)
        print(built.path, built.rows, built.build_seconds)
