"""Hostile input on the wire: a message larger than any dead letter may be, content the
decoder or the databases choke on, samples stamped in the future. Each is dead-lettered with
its reason, the samples around it are stored, and the offsets move on."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic
from sqlalchemy import func, select

import shared.background as background_module
from data_app.dead_letter import COPY_LIMIT_BYTES
from data_app.services import DataService
from shared.auth.roles import Role
from shared.db import db
from shared.kafka import admin_client
from shared.models import Patient, PatientMetric
from tests.auth import client_for, token_for
from tests.helpers import both_brokers, consumer_of, stored_rows, vitals_message

pytestmark = pytest.mark.integration

# The broker path is what most tests here are about; the corpus runs on both databases.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# Larger than the 10 MiB the dead-letter producer used to take for a full copy.
POISON_BYTES = 11 * 1024 * 1024
TOPIC_MAX_MESSAGE_BYTES = 12 * 1024 * 1024


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        wanted = [TopicPartition(topic, partition) for partition in range(partitions)]
        return [tp.offset for tp in consumer.committed(wanted, timeout=10)]
    finally:
        consumer.close()


@sqlite_only
@both_brokers
def test_message_too_large_to_copy_is_dead_lettered_truncated_and_ingest_goes_on(
    make_data_app, kafka_bootstrap, topic_names, read_topic, wait_for
):
    topic = topic_names["KAFKA_TOPIC"]
    # One partition, so the poison pill lies between the samples, and a broker that takes it.
    admin = admin_client(kafka_bootstrap)
    created = admin.create_topics(
        [NewTopic(topic, 1, 1, config={"max.message.bytes": str(TOPIC_MAX_MESSAGE_BYTES)})]
    )
    created[topic].result(30)
    patient = uuid.uuid4()
    # Incompressible, so the broker's limit applies to all of it.
    poison = random.Random(11).randbytes(POISON_BYTES)
    stream = [json.dumps(vitals_message(patient, i)).encode() for i in range(3)]
    stream += [poison]
    stream += [json.dumps(vitals_message(patient, i)).encode() for i in range(3, 6)]
    producer = Producer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "message.max.bytes": TOPIC_MAX_MESSAGE_BYTES,
            "compression.type": "none",
        }
    )
    for value in stream:
        producer.produce(topic, value=value, key=str(patient))
    assert producer.flush(60) == 0, "the stream was not delivered"

    app = make_data_app()
    consumer_of(app).start()

    wait_for(lambda: stored_rows(app) == 6, timeout=60, message="the 6 samples around the pill")
    (dead,) = read_topic(topic_names["KAFKA_DLQ_TOPIC"], 1)
    headers = dict(dead.headers())
    assert dead.value() == poison[:COPY_LIMIT_BYTES]
    assert headers["dlq.original_size"] == str(POISON_BYTES).encode()
    assert headers["dlq.reason"].decode().startswith("too large"), headers["dlq.reason"]
    assert headers["dlq.offset"] == b"3"
    wait_for(
        lambda: committed_offsets(kafka_bootstrap, "data-test", topic, 1) == [len(stream)],
        message="the group's offset past the whole stream",
    )
    assert consumer_of(app).status["failures_in_a_row"] == 0
    # And the batches after it.
    producer.produce(topic, value=json.dumps(vitals_message(patient, 6)).encode())
    assert producer.flush(30) == 0
    wait_for(lambda: stored_rows(app) == 7, message="a sample sent after the pill")


@sqlite_only
@pytest.mark.parametrize("failing", ["store", "dead-letter"])
def test_repeated_batch_failures_make_health_degraded_until_a_batch_succeeds(
    make_data_app, produce, topic_names, wait_for, monkeypatch, failing
):
    from data_app.dead_letter import DeadLetterWriter

    monkeypatch.setattr(background_module, "BACKOFF_SECONDS", (0.05,))
    broken = {"on": True}
    if failing == "store":
        method, owner = "store", DataService
        message = json.dumps(vitals_message(uuid.uuid4(), 0)).encode()
    else:
        method, owner = "write", DeadLetterWriter
        message = b"not json"
    real = getattr(owner, method)

    def fails_while_broken(self, *args):
        if broken["on"]:
            raise RuntimeError(f"{failing} is broken")
        return real(self, *args)

    monkeypatch.setattr(owner, method, fails_while_broken)
    app = make_data_app(CONSUMER_DEGRADED_AFTER_FAILURES=3)
    # The reason is a detail: only admins are told it.
    client = client_for(app, token_for(Role.ADMIN))
    consumer = consumer_of(app)
    consumer.retry_delay = 0.05
    produce(topic_names["KAFKA_TOPIC"], [message])
    consumer.start()

    def degraded():
        response = client.get("/health")
        return "failed" in response.json.get("reason", "") and response

    response = wait_for(degraded, message="/health degraded after repeated failures")
    assert response.status_code == 503
    assert response.json["status"] == "degraded"
    assert f"{failing} is broken" in response.json["reason"], response.json
    assert response.json["consumer"]["failures_in_a_row"] >= 3
    assert response.json["consumer"]["state"] == "running"

    broken["on"] = False
    healthy = wait_for(
        lambda: (r := client.get("/health")).status_code == 200 and r,
        message="/health ok once a batch succeeds",
    )
    assert healthy.json["status"] == "ok"
    assert healthy.json["consumer"]["failures_in_a_row"] == 0
    assert healthy.json["consumer"]["consumed"] == 1


# -- content the decoder or a database chokes on -------------------------------------------

HOSTILE = uuid.uuid4()


def hostile(second: int, **changes: object) -> bytes:
    return json.dumps({**vitals_message(HOSTILE, second), **changes}).encode()


def with_raw(second: int, field: str, raw: str) -> bytes:
    """A sample whose `field` holds `raw` as written, not as json.dumps would write it."""
    return hostile(second, **{field: "@raw@"}).replace(b'"@raw@"', raw.encode())


def ahead(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def hostile_corpus() -> list[tuple[str, bytes | None, bytes, str]]:
    """(name, key, value, what its dead-letter reason must mention), stamped now."""
    return [
        ("name with a lone surrogate", None, hostile(1, patient_name="\ud800 Petrov"), "U+D800"),
        ("name with NUL", None, hostile(2, patient_name="Ivan\x00Petrov"), "U+0000"),
        ("name with an escape sequence", None, hostile(3, patient_name="\x1b[2J"), "U+001B"),
        ("arrays nested 5000 deep", None, b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (
            "objects nested 2000 deep",
            None,
            b'{"a":' * 2000 + b"1" + b"}" * 2000,
            "nested too deeply",
        ),
        ("pulse of 5000 digits", None, with_raw(4, "pulse", "9" * 5000), "digits"),
        ("temperature 1e999", None, with_raw(5, "temperature", "1e999"), '"temperature"'),
        ("pulse 1e999", None, with_raw(6, "pulse", "1e999"), '"pulse"'),
        ("pulse as text", None, hostile(7, pulse="72"), '"pulse"'),
        ("name of 10000 characters", None, hostile(8, patient_name="x" * 10000), '"patient_name"'),
        ("name a number", None, hostile(9, patient_name=7), '"patient_name"'),
        ("year 1 east of UTC", None, hostile(10, timestamp="0001-01-01T00:00:00+01:00"), "range"),
        (
            "year 9999 west of UTC",
            None,
            hostile(11, timestamp="9999-12-31T23:59:59-23:59"),
            "range",
        ),
        ("4 minutes ahead", None, hostile(12, timestamp=ahead(timedelta(minutes=4))), "future"),
        ("30 seconds ahead", None, hostile(13, timestamp=ahead(timedelta(seconds=30))), "future"),
        # Older than the samples kept (RAW_RETENTION_DAYS, 30): a replay from a month-old log.
        ("31 days old", None, hostile(14, timestamp=ahead(-timedelta(days=31))), "too old"),
        ("a year old", None, hostile(15, timestamp=ahead(-timedelta(days=365))), "too old"),
        ("non-UTF-8 key", b"\xff\xfe\xfd", b"\xc3\x28", "not UTF-8"),
        ("key of 100 KiB", b"k" * 102400, b"{}", '"patient_uuid"'),
    ]


@pytest.fixture
def patients_named(database_url):
    def names(app) -> set[str]:
        with db.sessionmaker(app)() as session:
            return set(session.scalars(select(Patient.name)))

    return names


def test_hostile_corpus_is_dead_lettered_and_good_samples_stored(
    make_data_app, produce, read_topic, topic_names, wait_for, patients_named
):
    topic = topic_names["KAFKA_TOPIC"]
    corpus = hostile_corpus()
    app = make_data_app()
    good_patient = uuid.uuid4()
    # The good sample taken now: a little ahead of the clock, within the skew allowed.
    good = [
        json.dumps(vitals_message(good_patient, i, name="Good Patient")).encode()
        for i in range(len(corpus))
    ]
    good.append(
        json.dumps(
            {**vitals_message(good_patient, 0), "timestamp": ahead(timedelta(seconds=2))}
        ).encode()
    )
    unkeyed = []
    for i, (_name, key, value, _reason) in enumerate(corpus):
        if key is None:
            unkeyed += [good[i], value]
        else:
            produce(topic, [good[i], value], key=key)
    produce(topic, [*unkeyed, good[-1]])
    consumer_of(app).start()

    wait_for(lambda: stored_rows(app) >= len(good), message=f"{len(good)} good samples stored")
    dead = read_topic(topic_names["KAFKA_DLQ_TOPIC"], len(corpus))
    by_offset = {(m.partition(), m.offset()): m for m in dead}
    assert len(by_offset) == len(corpus)
    reasons = {}
    for message in dead:
        headers = dict(message.headers())
        reasons[message.value(), message.key()] = headers["dlq.reason"].decode()
    wrong = []
    for name, key, value, reason in corpus:
        copied_key = None if key is None else key[:1024]
        given = reasons.get((value, copied_key))
        if given is None:
            wrong.append(f"{name}: not dead-lettered")
        elif reason not in given:
            wrong.append(f"{name}: reason {given!r} does not mention {reason!r}")
    assert not wrong, "\n".join(wrong)

    health = wait_for(
        lambda: (
            (r := client_for(app, token_for(Role.ADMIN)).get("/health")).json["consumer"][
                "consumed"
            ]
            == len(good) + len(corpus)
            and r
        ),
        message="every message consumed",
    )
    assert health.status_code == 200, health.json
    assert health.json["consumer"]["dead_lettered"] == len(corpus)
    assert stored_rows(app) == len(good)
    assert patients_named(app) == {"Good Patient"}
    # The other good samples were taken an hour ago (vitals_message).
    since = datetime.now(UTC) - timedelta(minutes=10)
    recent = select(func.count()).where(PatientMetric.timestamp > since)
    with db.sessionmaker(app)() as session:
        assert session.scalar(recent) == 1, "the sample 2 s ahead was not stored"


@sqlite_only
def test_clock_skew_allowed_is_a_setting(make_data_app, produce, read_topic, topic_names, wait_for):
    app = make_data_app(MAX_CLOCK_SKEW_SECONDS=60)
    patient = uuid.uuid4()
    half_minute = {**vitals_message(patient, 0), "timestamp": ahead(timedelta(seconds=30))}
    two_minutes = {**vitals_message(patient, 1), "timestamp": ahead(timedelta(minutes=2))}
    produce(topic_names["KAFKA_TOPIC"], [half_minute, two_minutes])
    consumer_of(app).start()

    wait_for(lambda: stored_rows(app) == 1, message="the sample 30 s ahead stored")
    (dead,) = read_topic(topic_names["KAFKA_DLQ_TOPIC"], 1)
    assert json.loads(dead.value())["timestamp"] == two_minutes["timestamp"]
    assert "more than the 60 s allowed" in dict(dead.headers())["dlq.reason"].decode()


def test_a_sample_the_database_refuses_is_dead_lettered_alone(
    make_data_app, produce, read_topic, topic_names, wait_for, monkeypatch
):
    import data_app.decoding as decoding

    # As if the decoder let through a name no database can store (it no longer does).
    monkeypatch.setattr(decoding, "_check_text", lambda _field, _text: None)
    app = make_data_app()
    patients = [uuid.uuid4() for _ in range(3)]
    surrogate = {**vitals_message(patients[1], 0), "patient_name": "\ud800"}
    nul = {**vitals_message(patients[2], 0), "patient_name": "Ivan\x00Petrov"}
    good = [vitals_message(patients[0], i) for i in range(6)]
    stream = [*good[:3], surrogate, nul, *good[3:]]
    produce(topic_names["KAFKA_TOPIC"], stream)
    consumer_of(app).start()

    # SQLite stores NUL in text; PostgreSQL refuses it. Neither encodes a lone surrogate.
    refused = 2 if db.engine(app).dialect.name == "postgresql" else 1
    storable = len(stream) - refused
    wait_for(lambda: stored_rows(app) == storable, message="every storable sample stored")
    dead = read_topic(topic_names["KAFKA_DLQ_TOPIC"], refused)
    reasons = {json.loads(m.value())["patient_uuid"]: dict(m.headers()) for m in dead}
    assert str(patients[1]) in reasons
    assert all(h["dlq.reason"].startswith(b"not storable") for h in reasons.values()), reasons
    health = wait_for(
        lambda: (
            (r := client_for(app, token_for(Role.ADMIN)).get("/health")).json["consumer"][
                "consumed"
            ]
            == len(stream)
            and r
        ),
        message="every message consumed",
    )
    assert health.status_code == 200
    assert health.json["consumer"]["dead_lettered"] == refused
    assert health.json["consumer"]["stored"] == storable
