"""Helpers several test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest
import websocket
from alembic import command
from alembic.config import Config
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from flask import Flask
from sqlalchemy import Engine, create_engine, event, func, insert, inspect, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

import data_app
from data_app.rollups import add_stored
from shared.audit import AuditEvent
from shared.db import MIGRATIONS_DIR, db, migrate
from shared.identity import ApiToken, User, UserSession, Ward, WardMember
from shared.kafka import Connectable, client_config
from shared.lifecycle import background_service
from shared.models import Patient, PatientMetric

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)

# For a test of what no backend can change (input refused before any query runs): SQLite
# alone, overriding the two-database parameters of `database_url`.
on_sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# Runs a test once on each broker, through the `kafka_engine` fixture: the embedded tansu,
# and Apache Kafka (marked apache_kafka, so `pytest -m apache_kafka` selects those runs).
both_brokers = pytest.mark.parametrize(
    "kafka_engine",
    ["tansu", pytest.param("apache", marks=pytest.mark.apache_kafka)],
    indirect=True,
)


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


def simulator_sample(patient_uuid: uuid.UUID) -> dict:
    """A valid sample as patient_app sends it, taken now."""
    return {
        "patient_uuid": str(patient_uuid),
        "patient_name": "Ivan Petrov",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "pulse": 72,
        "resp_rate": 16,
        "bp": "120/80",
        "spo2": 97,
        "temperature": 36.8,
    }


# The table a statement reads or writes first: the FROM of a SELECT, an UPDATE's or INSERT's.
_TARGET = re.compile(
    r"^\s*(?:SELECT\b.*?\bFROM|UPDATE|INSERT\s+INTO|DELETE\s+FROM)\s+\"?(\w+)",
    re.IGNORECASE | re.DOTALL,
)
IDENTITY_TABLES = frozenset(
    model.__tablename__ for model in (User, WardMember, Ward, ApiToken, UserSession)
)
# Tables written around the view, not by it: the sign-in's, and the audit event recorded in
# a transaction of its own after the response is made.
NOT_THE_VIEWS = IDENTITY_TABLES | {AuditEvent.__tablename__}


@contextmanager
def view_statements(app: Flask) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements, with their parameters, the app's engine runs inside the block,
    except the sign-in's own (its transaction reads the account and the token's row on
    every request) and the audit event's (written after the view, in its own transaction):
    what the views themselves cost."""
    statements: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement: str, parameters: Any, *_args) -> None:
        target = _TARGET.match(statement)
        if target is None or target.group(1).lower() not in NOT_THE_VIEWS:
            statements.append((statement, parameters))

    engine = db.engine(app)
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


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

    def count(self, since: datetime | None = None, patient: uuid.UUID | None = None) -> int:
        """How many samples are stored (timestamped after `since`, of `patient`, if given)."""
        query = select(func.count()).select_from(PatientMetric)
        if since is not None:
            query = query.where(PatientMetric.timestamp > since)
        if patient is not None:
            query = query.join(PatientMetric.patient).where(Patient.uuid == patient)
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


# Decoded samples (systolic and diastolic apart, as data_app stores them). NEWS2 0.
NORMAL_VITALS = {
    "pulse": 72,
    "resp_rate": 15,
    "systolic": 122,
    "diastolic": 78,
    "spo2": 98,
    "temperature": 36.8,
}
# NEWS2 3 + 3 + 3 + 2 + 0 = 11: high risk; one sample of it raises an alert.
CRITICAL_VITALS = {
    "pulse": 125,
    "resp_rate": 28,
    "systolic": 88,
    "diastolic": 50,
    "spo2": 88,
    "temperature": 37.5,
}


def consumer_of(app: Flask):
    return background_service(app, "consumer")


@contextmanager
def data_app_on(settings: dict[str, Any]) -> Iterator[Flask]:
    """data_app with `settings` (its broker, identity, database, Redis), its schema made, a
    2 s group session so a rebalance is quick; its consumer started by the test, stopped
    here."""
    app = data_app.create_app(
        {"TESTING": True, "KAFKA_SESSION_TIMEOUT_MS": 2000, "CONSUMER_POLL_TIMEOUT": 0.2} | settings
    )
    migrate(db.engine(app))
    try:
        yield app
    finally:
        consumer_of(app).stop()
        db.engine(app).dispose()


def send_samples(bootstrap: str, topic: str, samples: list[dict]) -> None:
    """Send samples to a broker other than the session's (the `produce` fixture's)."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for sample in samples:
        producer.produce(topic, json.dumps(sample).encode())
    assert producer.flush(30) == 0, "samples were not delivered in time"


def topic_size(broker: Connectable, topic: str) -> int:
    """How many messages the broker (an address, or a KafkaConnection with its credentials)
    holds in `topic`, over all its partitions."""
    consumer = Consumer(client_config(broker, **{"group.id": f"size-{uuid.uuid4().hex}"}))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = [
            consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            for partition in partitions
        ]
    finally:
        consumer.close()
    return sum(high - low for low, high in ends)


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


def murmur2(key: bytes) -> int:
    """Kafka's Utils.murmur2, as a signed 32-bit int like Java's."""
    m, r, mask = 0x5BD1E995, 24, 0xFFFFFFFF
    h = (0x9747B28C ^ len(key)) & mask
    length4 = len(key) // 4
    for i in range(length4):
        k = int.from_bytes(key[i * 4 : i * 4 + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    tail = key[length4 * 4 :]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if len(tail) >= 1:
        h ^= tail[0]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def murmur2_partition(key: bytes, partitions: int) -> int:
    """The partition the Java clients' default partitioner picks for `key`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class _Serving(Protocol):
    def serve_forever(self) -> None: ...
    def shutdown(self) -> None: ...
    def server_close(self) -> None: ...


@contextmanager
def serving(server: _Serving, name: str) -> Iterator[None]:
    """Run `server` (werkzeug's make_server, http.server's) on a thread of its own inside
    the block; shut down and closed after it."""
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def open_stream(url: str, token: str, timeout: float) -> websocket.WebSocket | tuple[int, str]:
    """A live stream at `url`, signed in with `token`, past its hello; or the status and
    message its handshake was refused with (or the close code and reason, if refused after
    it). A handshake or hello that takes longer than `timeout` raises."""
    try:
        ws = websocket.create_connection(
            url, timeout=timeout, header=[f"Authorization: Bearer {token}"]
        )
    except websocket.WebSocketBadStatusException as refusal:
        return refusal.status_code, json.loads(refusal.resp_body)["message"]
    opcode, frame = ws.recv_data_frame(True)
    if opcode == websocket.ABNF.OPCODE_CLOSE:
        ws.close()
        ws.shutdown()
        return int.from_bytes(frame.data[:2], "big"), frame.data[2:].decode()
    assert json.loads(frame.data)["type"] == "hello"
    return ws


def to_revision(engine: Engine, revision: str, *, down: bool = False) -> set[str]:
    """Migrate to `revision`; the tables there are then."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)
    with engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def insert_samples(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert patient_metrics rows as data_app stores them: with their rollups and counts."""
    if not rows:
        return
    session.execute(insert(PatientMetric.__table__), rows)
    add_stored(session, rows)
