"""PostgreSQL databases of the query benchmark, built once and kept between runs.

A PostgreSQL cluster kept under var/bench/postgres-<major>/ (devserver.postgres with a folder
of its own) holds one database per size, `bench_query_<patients>_<recipe>`, where the recipe
(bench/recipes.py) is the digest of Vigil's migrations, of the SQL below that writes the rows
and of the sizes. Each is Vigil's migrations (samples partitioned by day), then
`patients × SAMPLES_PER_PATIENT` rows written in SQL (bench/storage.py's `samples_sql`, 5-s
spacing ending a few seconds before the build) with their per-minute rollups and counts as
data_app keeps them (shared/rollups.py), vacuumed and analysed.

A run never measures a kept database itself: live ingest writes into what it measures, so it
gets a copy (`CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY`, a copy of the files), dropped
afterwards. A database is built under a `_building` name and renamed once complete, so an
interrupted build is never reused. Kept databases whose name no longer matches their size's
recipe, or built more than MAX_AGE ago, are dropped when the benchmark next runs.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from bench.recipes import ago, digest
from bench.report import OUTPUT_DIR
from bench.storage import samples_sql
from devserver.postgres import PostgresCluster, find_bin_dir, fresh_database
from shared.db import migrate
from shared.rollups import rebuild_statements

SAMPLE_SECONDS = 5
SAMPLES_PER_PATIENT = 1_000
# data_app, run on each copy, drops the samples' partitions past RAW_RETENTION_DAYS (30 by
# default). A week keeps far inside that, with only a few days' empty partitions made since.
MAX_AGE = timedelta(days=7)
PATIENTS_SQL = (
    "INSERT INTO patients (uuid, name, created_at, alert_band, alert_calm_samples, sample_count)"
    " SELECT md5('query-bench-' || p)::uuid, 'Query Bench ' || lpad(p::text, 6, '0'), :start,"
    " 'low', 0, 0 FROM generate_series(1, :patients) AS p"
)
KEPT_NAME = re.compile(r"bench_query_(\d+)_([0-9a-f]+)")


@dataclass(frozen=True)
class KeptDatabase:
    """A complete database in the kept cluster, as built."""

    name: str
    patients: int
    until: str  # just after the newest sample: the `to` of a 24-h history holding them all
    built_at: float  # seconds since the epoch
    build_seconds: float
    reused: bool  # built by an earlier run

    @property
    def rows(self) -> int:
        return self.patients * SAMPLES_PER_PATIENT


@dataclass(frozen=True)
class PgDatabase:
    """The copy of a kept database that one run measures."""

    url: str
    kept: KeptDatabase
    copy_seconds: float

    @property
    def rows(self) -> int:
        return self.kept.rows

    @property
    def until(self) -> str:
        return self.kept.until

    def uuids(self) -> list[str]:
        engine = create_engine(self.url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                found = connection.execute(text("SELECT uuid FROM patients ORDER BY id"))
                return [str(value) for (value,) in found]
        finally:
            engine.dispose()


def recipe(patients: int) -> str:
    """The digest of everything that makes the rows of the database of `patients` patients."""
    return digest(
        [
            f"patients {patients}, samples {SAMPLES_PER_PATIENT}, every {SAMPLE_SECONDS} s",
            PATIENTS_SQL,
            samples_sql("postgresql"),
            *rebuild_statements("postgresql"),
            "VACUUM ANALYZE",
        ]
    )


def kept_name(patients: int) -> str:
    return f"bench_query_{patients}_{recipe(patients)}"


def kept_cluster() -> PostgresCluster:
    """The cluster that keeps the databases, for this machine's PostgreSQL (a data folder is
    only readable by the major version that made it: another version's is removed)."""
    bin_dir = find_bin_dir()
    folder = OUTPUT_DIR / f"postgres-{bin_dir.parent.name}"
    for other in OUTPUT_DIR.glob("postgres-*"):
        if other != folder and other.is_dir():
            print(f"Removing {other.name}: made by another PostgreSQL version", flush=True)
            shutil.rmtree(other)
    return PostgresCluster(bin_dir, folder=folder)


def _admin(server_url: str):
    return create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def _kept(connection: Connection) -> dict[str, dict]:
    """The kept cluster's databases with what their build recorded (None if unfinished)."""
    found = connection.execute(
        text(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database"
            " WHERE datname LIKE 'bench\\_query\\_%'"
        )
    )
    return {name: json.loads(comment) if comment else {} for name, comment in found}


def _quoted(name: str) -> str:
    """A database name as an SQL identifier, whatever it holds (a found one may hold `"`)."""
    return '"' + name.replace('"', '""') + '"'


def drop_stale(server_url: str) -> list[str]:
    """Drop every kept database that is unfinished, older than MAX_AGE or not its size's
    recipe any more; the names dropped."""
    admin = _admin(server_url)
    dropped = []
    try:
        with admin.connect() as connection:
            for name, facts in _kept(connection).items():
                match = KEPT_NAME.fullmatch(name)
                stale = (
                    match is None
                    or "built_at" not in facts
                    or time.time() - facts["built_at"] > MAX_AGE.total_seconds()
                    or name != kept_name(int(match.group(1)))
                )
                if stale:
                    connection.execute(text(f"DROP DATABASE {_quoted(name)} WITH (FORCE)"))
                    dropped.append(name)
    finally:
        admin.dispose()
    return dropped


def kept_database(server_url: str, patients: int) -> KeptDatabase:
    """The kept database of `patients` patients, built first if there is none."""
    name = kept_name(patients)
    admin = _admin(server_url)
    try:
        with admin.connect() as connection:
            facts = _kept(connection).get(name)
        if facts:
            return KeptDatabase(
                name,
                patients,
                facts["until"],
                facts["built_at"],
                facts["build_seconds"],
                reused=True,
            )
        building = f"{name}_building"
        started = time.perf_counter()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{building}"'))
        url = admin.url.set(database=building).render_as_string(hide_password=False)
        until = _build(url, patients)
        built = KeptDatabase(
            name,
            patients,
            until,
            time.time(),
            round(time.perf_counter() - started, 1),
            reused=False,
        )
        facts = {"until": until, "built_at": built.built_at, "build_seconds": built.build_seconds}
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{building}" RENAME TO "{name}"'))
            # A comment on a database is the cluster's, not copied with it as a template.
            connection.execute(text(f"COMMENT ON DATABASE \"{name}\" IS '{json.dumps(facts)}'"))
        return built
    finally:
        admin.dispose()


def _build(url: str, patients: int) -> str:
    """Vigil's schema and the rows into the empty database at `url`; the `until` of them."""
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2 * SAMPLE_SECONDS)
    start = end - timedelta(seconds=SAMPLE_SECONDS * (SAMPLES_PER_PATIENT - 1))
    engine = create_engine(url, poolclass=NullPool)
    try:
        migrate(engine)
        with engine.begin() as connection:
            connection.execute(text(PATIENTS_SQL), {"patients": patients, "start": start})
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
    return (end + timedelta(seconds=SAMPLE_SECONDS)).isoformat().replace("+00:00", "Z")


@contextmanager
def working_copy(server_url: str, patients: int) -> Iterator[PgDatabase]:
    """A copy of the kept database of `patients` patients (built first if need be) for one
    run to measure and write into; dropped afterwards. Says which it was, and how long."""
    kept = kept_database(server_url, patients)
    started = time.perf_counter()
    with fresh_database(
        server_url, prefix="vigil_query", template=kept.name, strategy="FILE_COPY"
    ) as url:
        db = PgDatabase(url, kept, round(time.perf_counter() - started, 1))
        print(describe(db), flush=True)
        yield db


def describe(db: PgDatabase) -> str:
    """What was built or reused for `db`, and how long it took."""
    kept = db.kept
    if kept.reused:
        how = (
            f"reused {kept.name} (built {ago(kept.built_at)} in {kept.build_seconds:.1f} s), "
            f"copied in {db.copy_seconds:.1f} s"
        )
    else:
        how = f"built {kept.name} in {kept.build_seconds:.1f} s, copied in {db.copy_seconds:.1f} s"
    return f"PostgreSQL database of {db.rows:,} rows: {how}"
