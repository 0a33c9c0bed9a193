"""SQLite databases of the query benchmark: Vigil's schema, filled fast, kept under var/bench.

The schema comes from Vigil's own migrations, so monitor_app starts on the file as on a
production database (its migration finds nothing to do). The rows are written by sqlite3
`executemany` in one transaction, in (patient, time) order: the unique (patient_id,
timestamp) index, which SQLite keeps inside the table's definition and so cannot be dropped
and rebuilt, then only ever grows at its right edge, like the rowid.

A built file is kept under var/bench/query-db/, named by its size and the digest of its recipe
(bench/recipes.py: the migrations, and the code and SQL below that make the rows), so a re-run
skips the build and any change to the recipe rebuilds; files of an older recipe are removed.
A run measures a copy of the kept file (`working_copy`): monitor_app and the benchmark's own
account write into the database they are given, and the kept one stays as it was built.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

from bench import BENCH_ID_SECRET
from bench.recipes import ago, digest
from bench.report import OUTPUT_DIR
from patient_app import physiology
from patient_app.patients import patient_uuid_for
from patient_app.physiology import PatientPhysiology
from shared import news2
from shared.db import make_engine, migrate
from shared.news2 import score_news2
from shared.rollups import rebuild_statements

CACHE_DIR = OUTPUT_DIR / "query-db"
KEPT_NAME = re.compile(r"vigil-(\d+)x(\d+)-([0-9a-f]+)")
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
    built_at: float = 0.0  # seconds since the epoch
    copy_seconds: float | None = None  # None: the kept file itself, not a run's copy

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


def recipe(patients: int, samples_per_patient: int) -> str:
    """The digest of everything that makes the rows of the file of this size: the schema,
    this module's builder, the physiology and scoring it draws on, and the sizes."""
    return digest(
        [
            f"patients {patients}, samples {samples_per_patient}, every {SAMPLE_SECONDS} s",
            f"traces {TRACES}, abnormal {ABNORMAL}, ids {BENCH_ID_SECRET}",
            *(inspect.getsource(part) for part in (_build, _name, _trace, patient_uuid_for)),
            inspect.getsource(physiology),
            inspect.getsource(news2),
            *rebuild_statements("sqlite"),
        ]
    )


def database(patients: int, samples_per_patient: int) -> Database:
    """The kept database of this size, built first if there is none for this recipe."""
    stem = f"vigil-{patients}x{samples_per_patient}-{recipe(patients, samples_per_patient)}"
    path, facts = CACHE_DIR / f"{stem}.db", CACHE_DIR / f"{stem}.json"
    if path.exists() and facts.exists():
        known = json.loads(facts.read_text())
        return Database(
            path,
            patients,
            samples_per_patient,
            known["until"],
            known["build_seconds"],
            cached=True,
            built_at=known.get("built_at", facts.stat().st_mtime),
        )
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # Built beside its final name and renamed, so an interrupted build is never reused.
    building = path.with_suffix(".building")
    building.unlink(missing_ok=True)
    until = _build(building, patients, samples_per_patient)
    building.rename(path)
    Path(f"{building}.migrate.lock").unlink(missing_ok=True)  # left by shared.db.migrate
    seconds = round(time.perf_counter() - started, 2)
    built_at = time.time()
    facts.write_text(
        json.dumps({"until": until, "build_seconds": seconds, "built_at": built_at}) + "\n"
    )
    return Database(
        path, patients, samples_per_patient, until, seconds, cached=False, built_at=built_at
    )


def remove_stale() -> list[str]:
    """Remove the kept files (and leftovers of interrupted builds) that no longer match
    their size's recipe; the names removed."""
    removed = []
    for found in sorted(CACHE_DIR.glob("*")) if CACHE_DIR.is_dir() else []:
        match = KEPT_NAME.fullmatch(found.name.split(".", 1)[0])
        current = match is not None and match[3] == recipe(int(match[1]), int(match[2]))
        if (current and found.suffix in (".db", ".json")) or not found.is_file():
            continue
        found.unlink()
        removed.append(found.name)
    return removed


@contextmanager
def working_copy(db: Database) -> Iterator[Database]:
    """A copy of the kept file `db` for one run to measure and write into, removed after."""
    with tempfile.TemporaryDirectory(prefix="vigil-query-db-") as folder:
        started = time.perf_counter()
        copy = Path(folder) / db.path.name
        shutil.copy(db.path, copy)  # the file's private mode too
        yield replace(db, path=copy, copy_seconds=round(time.perf_counter() - started, 2))


def describe(db: Database) -> str:
    """What was built or reused for `db`, and how long it took."""
    copied = "" if db.copy_seconds is None else f", copied in {db.copy_seconds:.1f} s"
    if db.cached:
        how = f"reused {db.path.name} (built {ago(db.built_at)} in {db.build_seconds:.1f} s)"
    else:
        how = f"built {db.path.name} in {db.build_seconds:.1f} s"
    return f"SQLite database of {db.rows:,} rows: {how}{copied}"


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
        print(describe(database(int(size), 1000)))
