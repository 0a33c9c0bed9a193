"""What the ingest benchmark compares data_app with, on the same topic and the same rows.

- the straightforward consumer a first version would write: one message, one transaction;
- the raw limits: confluent-kafka reading with no processing, and sqlite3 `executemany`.

Each returns a Timing of the window it times.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.db import Base, make_engine
from shared.models import Patient, PatientMetric
from shared.news2 import score_news2

RAW_TRANSACTION_ROWS = 50_000
FIRST_MESSAGE_TIMEOUT_SECONDS = 30.0
READ_TIMEOUT_SECONDS = 120.0


class Timing(NamedTuple):
    samples: int
    seconds: float  # wall clock
    cpu_seconds: float  # this process's CPU time (all threads) in the same window


class Stopwatch:
    """Wall-clock and process CPU time since it was made: on a shared machine the CPU time
    says what the work cost even when other processes slow the wall clock down."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def timing(self, samples: int) -> Timing:
        return Timing(samples, time.perf_counter() - self.wall, time.process_time() - self.cpu)


def straightforward_consume(
    bootstrap: str, topic: str, database: Path, limit: int, budget_s: float
) -> Timing:
    """The consumer a first version would write: per message a parse, a get-or-create of the
    patient, an insert, a database commit and a synchronous offset commit.

    It scores NEWS2 so its rows match Vigil's, but raises no alerts. Same engine settings as
    Vigil's (WAL, synchronous=NORMAL), so the difference is the per-message work, not fsyncs.
    Timed from its first message (the group join excluded) for `limit` messages or `budget_s`
    seconds, whichever comes first.
    """
    engine = make_engine(f"sqlite:///{database}")
    Base.metadata.create_all(engine)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-straightforward",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 2000,
            "heartbeat.interval.ms": 500,
        }
    )
    consumer.subscribe([topic])
    count, started, subscribed = 0, None, time.perf_counter()
    try:
        with Session(engine) as session:
            while count < limit and (
                started is None or time.perf_counter() - started.wall < budget_s
            ):
                message = consumer.poll(1.0)
                if message is None or message.error():
                    if (
                        started is None
                        and time.perf_counter() - subscribed > FIRST_MESSAGE_TIMEOUT_SECONDS
                    ):
                        raise TimeoutError("the straightforward consumer got no message")
                    continue
                started = started or Stopwatch()
                data = json.loads(message.value())
                patient_uuid = uuid.UUID(data["patient_uuid"])
                patient = session.scalars(
                    select(Patient).where(Patient.uuid == patient_uuid)
                ).first()
                if patient is None:
                    patient = Patient(uuid=patient_uuid, name=data["patient_name"])
                    session.add(patient)
                systolic, diastolic = (int(part) for part in data["bp"].split("/"))
                news2 = score_news2(
                    resp_rate=data["resp_rate"],
                    spo2=data["spo2"],
                    systolic=systolic,
                    pulse=data["pulse"],
                    temperature=data["temperature"],
                )
                session.add(
                    PatientMetric(
                        patient=patient,
                        timestamp=datetime.fromisoformat(data["timestamp"]),
                        pulse=data["pulse"],
                        resp_rate=data["resp_rate"],
                        systolic=systolic,
                        diastolic=diastolic,
                        spo2=data["spo2"],
                        temperature=data["temperature"],
                        news2_score=news2.score,
                        news2_band=news2.band,
                    )
                )
                session.commit()
                consumer.commit(message, asynchronous=False)
                count += 1
            timing = started.timing(count)
            stored = session.scalar(select(func.count()).select_from(PatientMetric))
    finally:
        consumer.close()
        engine.dispose()
    if stored != count:
        raise RuntimeError(f"the straightforward consumer stored {stored} of {count}")
    return timing


def raw_consume(bootstrap: str, topic: str, partitions: int, expected: int, batch: int) -> Timing:
    """confluent-kafka alone reading the whole topic, assigned (so no group join).

    Timed from its first batch on, like data_app: the first fetch after an assignment takes
    about half a second on tansu, which is start-up, not throughput.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-raw-consume",
            "enable.auto.commit": False,
        }
    )
    count, first, timed = 0, None, 0
    try:
        assigned = time.perf_counter()
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        while count < expected:
            if time.perf_counter() - assigned > READ_TIMEOUT_SECONDS:
                raise TimeoutError(f"raw consume read {count} of {expected}")
            messages = consumer.consume(batch, 1.0)
            read = sum(1 for m in messages if m.error() is None and m.value() is not None)
            count += read
            if first is None and read:
                first = Stopwatch()
            elif read:
                timed += read
        return first.timing(timed)
    finally:
        consumer.close()


def raw_insert(database: Path, patients: list[tuple], rows: list[tuple]) -> Timing:
    """sqlite3 alone inserting already-decoded rows in large transactions.

    The schema comes from the models (same table, constraints and indexes) and the pragmas are
    data_app's (WAL, synchronous=NORMAL, foreign keys on).
    """
    engine = make_engine(f"sqlite:///{database}")
    Base.metadata.create_all(engine)
    engine.dispose()
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            connection.execute(f"PRAGMA {pragma}")
        started = Stopwatch()
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO patients (id, uuid, name, created_at, alert_band, alert_calm_samples)"
            " VALUES (?, ?, ?, ?, 'low', 0)",
            patients,
        )
        for offset in range(0, len(rows), RAW_TRANSACTION_ROWS):
            if offset:
                connection.execute("BEGIN")
            connection.executemany(
                "INSERT INTO patient_metrics (patient_id, timestamp, pulse, resp_rate, systolic,"
                " diastolic, spo2, temperature, received_at, news2_score, news2_band)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows[offset : offset + RAW_TRANSACTION_ROWS],
            )
            connection.execute("COMMIT")
        timing = started.timing(len(rows))
        stored = connection.execute("SELECT count(*) FROM patient_metrics").fetchone()[0]
    finally:
        connection.close()
    if stored != len(rows):
        raise RuntimeError(f"raw insert stored {stored} of {len(rows)}")
    return timing
