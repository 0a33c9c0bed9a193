"""Helpers several test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Consumer, Message, Producer
from flask import Flask
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from shared.db import db
from shared.lifecycle import background_service
from shared.models import Patient, PatientMetric

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


def vitals_message(
    patient_uuid: uuid.UUID, second: int, name: str = "Olga Smirnova", start: datetime = HOUR_AGO
) -> dict:
    """A valid message on the topic, `second` seconds after `start`."""
    return {
        "patient_uuid": str(patient_uuid),
        "patient_name": name,
        "timestamp": (start + timedelta(seconds=second)).isoformat(),
        "pulse": 60 + second % 40,
        "resp_rate": 16,
        "bp": "118/76",
        "spo2": 97,
        "temperature": 36.9,
    }


def stored_rows(app: Flask) -> int:
    """How many samples the app's database holds."""
    with db.sessionmaker(app)() as session:
        return session.scalar(select(func.count()).select_from(PatientMetric))


class StoredSamples:
    """Reads the samples another process writes to a SQLite file; never writes, nor creates it.

    Before that process has created and migrated the database, it holds no samples.
    """

    def __init__(self, path: Path) -> None:
        # A connection per read: each then sees the database as the writer left it, never a
        # snapshot a pooled connection still holds.
        self.engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true", poolclass=NullPool)

    def count(self, since: datetime | None = None) -> int:
        """How many samples are stored (timestamped after `since`, if given)."""
        query = select(func.count()).select_from(PatientMetric)
        if since is not None:
            query = query.where(PatientMetric.timestamp > since)
        try:
            with self.engine.connect() as connection:
                return connection.scalar(query)
        except OperationalError:
            return 0

    def keys(self) -> list[tuple[uuid.UUID, datetime]]:
        """(patient uuid, timestamp) of every stored sample, repeats included."""
        with self.engine.connect() as connection:
            return [
                tuple(row)
                for row in connection.execute(
                    select(Patient.uuid, PatientMetric.timestamp).join(PatientMetric.patient)
                )
            ]

    def close(self) -> None:
        self.engine.dispose()


def consumer_of(app: Flask):
    return background_service(app, "consumer")


def send_samples(bootstrap: str, topic: str, samples: list[dict]) -> None:
    """Send samples to a broker other than the session's (the `produce` fixture's)."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for sample in samples:
        producer.produce(topic, json.dumps(sample).encode())
    assert producer.flush(30) == 0, "samples were not delivered in time"


def read_messages(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[Message]:
    """Up to `count` messages from the start of `topic`, read by a fresh consumer group."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 2000,
            "heartbeat.interval.ms": 500,
        }
    )
    consumer.subscribe([topic])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < count and time.monotonic() < deadline:
            messages.extend(
                m for m in consumer.consume(count - len(messages), 0.5) if not m.error()
            )
    finally:
        consumer.close()
    return messages
