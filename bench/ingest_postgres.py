"""The ingest benchmark on PostgreSQL: databases in the stack's private cluster, the raw COPY
baseline, and data_app draining the topic from separate processes.

- raw COPY: psycopg's binary COPY of the already-decoded rows into patient_metrics (its day's
  partition made first, as data_app's retention job does), in large transactions: about as
  fast as rows go into that table from Python.
- processes: data_app's consumer in N processes of their own, one consumer group over the
  topic's partitions: what a second consumer adds on this machine.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from bench.ingest_baselines import RAW_TRANSACTION_ROWS, Stopwatch, Timing
from data_app import create_app
from data_app.config import DATA_SETTINGS
from data_app.retention import RetentionPolicy, maintain
from devserver.postgres import fresh_database
from shared.db import make_engine, migrate
from shared.lifecycle import background_service, stop_background

DEFAULTS = {setting.name: setting.default for setting in DATA_SETTINGS}
DRAIN_TIMEOUT_SECONDS = 240.0
START_TIMEOUT_SECONDS = 60.0

_PATIENT_COLUMNS = (
    "id, uuid, name, created_at, alert_band, alert_calm_samples",
    ["int8", "uuid", "varchar", "timestamp", "varchar", "int4"],
)
_METRIC_COLUMNS = (
    "patient_id, timestamp, pulse, resp_rate, systolic, diastolic, spo2, temperature,"
    " received_at, news2_score, news2_band",
    ["int8", "timestamp", *["int4"] * 5, "float8", "timestamp", "int2", "varchar"],
)


def prepare(engine_url: str) -> None:
    """Vigil's schema and the partitions data_app's retention job makes when it starts."""
    engine = make_engine(engine_url)
    try:
        migrate(engine)
        maintain(engine, RetentionPolicy.from_config(DEFAULTS))
    finally:
        # A database is copied only while nobody is connected to it.
        engine.dispose()


@contextmanager
def prepared_databases(server_url: str) -> Iterator[Any]:
    """A callable giving a new database (a context manager yielding its URL) ready for
    samples: copies of one migrated once, which takes a good part of a second."""
    with fresh_database(server_url, prefix="bench_template") as template_url:
        prepare(template_url)
        template = make_url(template_url).database

        def database(prefix: str) -> Any:
            return fresh_database(server_url, prefix=prefix, template=template)

        yield database


def libpq_url(engine_url: str) -> str:
    """The SQLAlchemy URL as psycopg itself takes it."""
    return make_url(engine_url).set(drivername="postgresql").render_as_string(hide_password=False)


@cache
def _moment(text: str) -> datetime:
    # The workload's times are SQLite's text (bench.ingest.SQLITE_TIME); few distinct ones.
    return datetime.fromisoformat(text)


def raw_copy(engine_url: str, patients: list[tuple], rows: list[tuple]) -> Timing:
    """psycopg alone: binary COPY of the patients, then of the rows, RAW_TRANSACTION_ROWS a
    transaction, into the real (partitioned, indexed, foreign-keyed) tables."""
    patient_rows = [
        (index, uuid.UUID(hex_uuid), name, _moment(at), "low", 0)
        for index, hex_uuid, name, at in patients
    ]
    metric_rows = [(r[0], _moment(r[1]), *r[2:8], _moment(r[8]), *r[9:]) for r in rows]
    with psycopg.connect(libpq_url(engine_url)) as connection:
        started = Stopwatch()
        with connection.cursor() as cursor:
            for table, (columns, types), table_rows, per_transaction in (
                ("patients", _PATIENT_COLUMNS, patient_rows, len(patient_rows)),
                ("patient_metrics", _METRIC_COLUMNS, metric_rows, RAW_TRANSACTION_ROWS),
            ):
                for offset in range(0, len(table_rows), per_transaction):
                    # The table and columns are this module's constants.
                    statement = f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)"
                    with cursor.copy(statement) as copy:
                        copy.set_types(types)
                        for row in table_rows[offset : offset + per_transaction]:
                            copy.write_row(row)
                    connection.commit()
        timing = started.timing(len(rows))
        stored = connection.execute("SELECT count(*) FROM patient_metrics").fetchone()[0]
    if stored != len(rows):
        raise RuntimeError(f"raw COPY stored {stored} of {len(rows)}")
    return timing


def _consume(config: dict[str, Any], progress: Any, started: Any, stop: Any) -> None:
    """One data_app consumer process: runs until told to stop, saying how far it got.

    progress holds (samples stored, CPU seconds of this process), started whether its
    consumer thread is up."""
    app = create_app(config)
    service = background_service(app, "consumer")
    service.start()
    started.set()
    try:
        while not stop.is_set() and service.running:
            progress[1] = time.process_time()
            progress[0] = service.status["stored"]
            stop.wait(0.005)
    finally:
        stop_background(app)


def drain_in_processes(config: dict[str, Any], processes: int, expected: int) -> Timing:
    """data_app's consumer in `processes` processes of one group until `expected` samples are
    stored, timed from the moment every process has stored a batch (so neither the start-up nor
    the group's settling counts) to the last one.

    CPU is the consumer processes' own, summed (not the parent's, nor the servers').
    """
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    workers = []
    for _ in range(processes):
        progress, started = context.Array("d", 2, lock=False), context.Event()
        process = context.Process(
            target=_consume, args=(config, progress, started, stop), daemon=True
        )
        process.start()
        workers.append((process, progress, started))
    try:
        began = time.monotonic()
        window: tuple[float, float, float] | None = None  # wall, stored, CPU at its start
        while True:
            now = time.monotonic()
            stored = sum(progress[0] for _, progress, _ in workers)
            cpu = sum(progress[1] for _, progress, _ in workers)
            if window is None and all(progress[0] for _, progress, _ in workers):
                window = (now, stored, cpu)
            if stored >= expected and window is not None:
                break
            if now - began > START_TIMEOUT_SECONDS + DRAIN_TIMEOUT_SECONDS or not all(
                process.is_alive() for process, _, _ in workers
            ):
                raise TimeoutError(f"{processes} data_app processes stored {stored} of {expected}")
            time.sleep(0.005)
        return Timing(int(stored - window[1]), now - window[0], cpu - window[2])
    finally:
        stop.set()
        for process, _, _ in workers:
            process.join(30)
            if process.is_alive():
                process.kill()
