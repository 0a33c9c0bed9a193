"""data_app under faults: killed outright mid-drain, restarted with nothing left to read, fed
a corpus of malformed messages, and left by a broker that restarts without its topics."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import data_app.consumer as consumer_module
from data_app.dead_letter import COPY_LIMIT_BYTES
from devserver.ports import free_port
from devserver.processes import Processes, RestartableBroker
from shared.kafka import TopicSettings, ensure_topic
from shared.schemas import MAX_MESSAGE_BYTES
from tests.auth import get_json_as_admin
from tests.helpers import (
    HOUR_AGO,
    StoredSamples,
    both_brokers,
    consumer_of,
    murmur2_partition,
    send_samples,
    stored_rows,
    vitals_message,
)
from tests.processes import data_app_processes

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(sqlite_url):
    # The broker path is what is under test here; storage runs on both backends elsewhere.
    return sqlite_url


# -- SIGKILL mid-drain ---------------------------------------------------------------------

PATIENTS = 100
SECONDS = 200
TOTAL = PATIENTS * SECONDS
BATCH = 100


@pytest.fixture
def data_server(
    kafka_bootstrap, topic_names, redis_settings, tmp_path: Path
) -> Iterator[tuple[Processes, StoredSamples]]:
    """Settings for data_app processes on one database file, and a reader of that file."""
    processes = data_app_processes(
        tmp_path,
        kafka_bootstrap,
        **topic_names,
        **redis_settings,
        # Small batches: the drain takes many commits, so a kill lands between two of them.
        CONSUMER_BATCH_SIZE=str(BATCH),
    )
    database = tmp_path / "vigil.db"
    stored = StoredSamples(database)
    try:
        yield processes, stored
    finally:
        processes.stop_all()
        stored.close()


@both_brokers
def test_sigkill_while_draining_loses_and_duplicates_nothing(
    data_server, produce, kafka_bootstrap, topic_names, wait_for
):
    processes, stored = data_server
    patients = [uuid.uuid4() for _ in range(PATIENTS)]
    ensure_topic(kafka_bootstrap, topic_names["KAFKA_TOPIC"], TopicSettings(partitions=3))
    produce(
        topic_names["KAFKA_TOPIC"],
        [vitals_message(patient, second) for second in range(SECONDS) for patient in patients],
    )

    processes.start_gunicorn("data", "data_app", free_port())

    def draining() -> bool:
        processes.check_running("data")
        return stored.count() >= TOTAL // 10

    wait_for(draining, timeout=60, message="the drain to get going")
    processes.kill("data")
    partway = stored.count()
    assert partway < TOTAL, "killed after the drain had finished: nothing to test"
    assert '"consumer stopped"' not in processes.log("data"), "the consumer shut down cleanly"

    port = free_port()
    processes.start_gunicorn("data-restarted", "data_app", port)

    def drained() -> bool:
        processes.check_running("data-restarted")
        return stored.count() >= TOTAL

    wait_for(drained, timeout=60, interval=0.2, message=f"{TOTAL} stored samples")

    def caught_up() -> dict | None:
        status, body = get_json_as_admin(f"http://127.0.0.1:{port}/health")
        return body if status == 200 and body["consumer"]["lag"] == 0 else None

    consumer = wait_for(caught_up, timeout=30, interval=0.2, message="zero lag")["consumer"]
    # The restarted process stored only what was missing; replays were absorbed. (At most:
    # a batch the killed process committed as it died may only show after `partway` was read.)
    assert TOTAL - partway - BATCH <= consumer["stored"] <= TOTAL - partway, (partway, consumer)
    assert consumer["consumed"] == consumer["stored"] + consumer["duplicates"], consumer
    assert consumer["dead_lettered"] == 0, consumer

    keys = Counter(stored.keys())
    assert len(keys) == TOTAL == sum(keys.values()), (
        f"{sum(keys.values())} rows for {len(keys)} distinct samples"
    )
    expected = {
        (patient, HOUR_AGO + timedelta(seconds=second))
        for patient in patients
        for second in range(SECONDS)
    }
    missing = expected - set(keys)
    assert not missing, f"{len(missing)} samples missing, e.g. {sorted(missing)[:3]}"


# -- the lag after a restart --------------------------------------------------------------


def one_patient_per_partition(partitions: int) -> list[uuid.UUID]:
    """A patient whose samples land on each partition (Vigil's producers place keys as the
    Java clients do, by murmur2)."""
    found: dict[int, uuid.UUID] = {}
    while len(found) < partitions:
        patient = uuid.uuid4()
        found.setdefault(murmur2_partition(str(patient).encode(), partitions), patient)
    return list(found.values())


def test_lag_after_a_restart_counts_only_unread_samples(
    make_data_app, produce, topic_names, wait_for, monkeypatch
):
    # Partitions the restarted consumer has nothing left to read from are no backlog, although
    # it has not read from them yet: health must not report a lag that never drains.
    refreshed: list[tuple[int, int]] = []
    refresh = consumer_module.VitalsConsumer._refresh_lag

    def refresh_and_record(service) -> None:
        refresh(service)
        refreshed.append((service.status["consumed"], service.status["lag"]))

    monkeypatch.setattr(consumer_module, "LAG_REFRESH_SECONDS", 0)
    monkeypatch.setattr(consumer_module.VitalsConsumer, "_refresh_lag", refresh_and_record)
    topic = topic_names["KAFKA_TOPIC"]
    patients = one_patient_per_partition(3)
    first = make_data_app()
    consumer_of(first).start()
    for patient in patients:
        produce(topic, [vitals_message(patient, 0)], key=str(patient))
    wait_for(lambda: stored_rows(first) == 3, message="a sample on each partition stored")
    consumer_of(first).stop()

    second = make_data_app()
    consumer_of(second).start()
    refreshed.clear()
    produce(topic, [vitals_message(patients[0], 1)], key=str(patients[0]))
    # The fetch that brought this sample told the ends of every partition.
    after = wait_for(
        lambda: [lag for consumed, lag in refreshed if consumed == 1],
        timeout=30,
        message="the lag refreshed after the new sample",
    )
    assert after[0] == 0, f"lag {after[0]} with nothing left to read"


# -- the malformed corpus ------------------------------------------------------------------

BAD_PATIENT = uuid.uuid4()


def bad_sample(second: int, drop: tuple[str, ...] = (), **changes: object) -> bytes:
    """A sample of BAD_PATIENT with fields changed or dropped; unique bytes per `second`."""
    document = {**vitals_message(BAD_PATIENT, second), **changes}
    for field in drop:
        del document[field]
    return json.dumps(document).encode()


def with_token(second: int, field: str, token: str) -> bytes:
    """A sample whose `field` holds a raw token that strict JSON does not have (NaN...)."""
    return bad_sample(second, **{field: "@token@"}).replace(b'"@token@"', token.encode())


def seconds_from_now(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


# (name, message, what its dead-letter reason must mention)
CORPUS: list[tuple[str, bytes, str]] = [
    ("empty", b"", "empty message"),
    ("not JSON", b"not json", "not JSON"),
    ("truncated JSON", bad_sample(1)[:-7], "not JSON"),
    ("invalid UTF-8", b"\xff\xfe\x00garbage", "not UTF-8"),
    (
        "invalid UTF-8 inside JSON",
        bad_sample(2, patient_name="@").replace(b"@", b"\xc3\x28"),
        "not UTF-8",
    ),
    ("JSON array", b"[1, 2, 3]", "expected a JSON object"),
    ("JSON null", b"null", "expected a JSON object"),
    ("NaN", with_token(3, "temperature", "NaN"), "NaN is not a valid JSON number"),
    ("Infinity", with_token(4, "temperature", "Infinity"), "Infinity is not a valid JSON number"),
    ("-Infinity", with_token(5, "pulse", "-Infinity"), "-Infinity is not a valid JSON number"),
    ("pulse as text", bad_sample(6, pulse="72"), '"pulse"'),
    ("pulse fractional", bad_sample(7, pulse=72.5), '"pulse"'),
    ("spo2 boolean", bad_sample(8, spo2=True), '"spo2"'),
    ("temperature as text", bad_sample(9, temperature="hot"), '"temperature"'),
    ("patient_uuid a number", bad_sample(10, patient_uuid=42), '"patient_uuid"'),
    ("patient_uuid not a UUID", bad_sample(11, patient_uuid="bed-4"), '"patient_uuid"'),
    ("pulse missing", bad_sample(12, drop=("pulse",)), '"pulse"'),
    ("timestamp missing", bad_sample(13, drop=("timestamp",)), '"timestamp"'),
    ("patient_uuid missing", bad_sample(14, drop=("patient_uuid",)), '"patient_uuid"'),
    ("bp abc", bad_sample(15, bp="abc"), '"bp"'),
    ("bp 120/", bad_sample(16, bp="120/"), '"bp"'),
    ("bp 80/120", bad_sample(17, bp="80/120"), '"bp"'),
    ("bp a number", bad_sample(18, bp=12080), '"bp"'),
    ("bp 400/80", bad_sample(19, bp="400/80"), '"bp"'),
    ("pulse 900", bad_sample(20, pulse=900), '"pulse"'),
    ("resp_rate -1", bad_sample(21, resp_rate=-1), '"resp_rate"'),
    ("spo2 101", bad_sample(22, spo2=101), '"spo2"'),
    ("temperature 60", bad_sample(23, temperature=60.0), '"temperature"'),
    ("timestamp without zone", bad_sample(24, timestamp="2026-01-01T10:00:00"), '"timestamp"'),
    (
        "timestamp an hour ahead",
        bad_sample(25, timestamp=seconds_from_now(timedelta(hours=1))),
        "future",
    ),
    (
        "timestamp a year ahead",
        bad_sample(26, timestamp=seconds_from_now(timedelta(days=365))),
        "future",
    ),
    ("timestamp in 1970", bad_sample(27, timestamp="1970-01-01T00:00:00+00:00"), "before 2000"),
    # Over a mebibyte: larger than librdkafka's default fetch size per partition, too.
    ("1 MiB", bad_sample(28, note="x" * 1_048_576), f"exceeds {MAX_MESSAGE_BYTES}"),
]


def test_the_corpus_is_malformed_in_distinct_ways():
    # The consumer test identifies a dead-lettered message by its bytes.
    assert len({message for _name, message, _reason in CORPUS}) == len(CORPUS)
    assert len(CORPUS[-1][1]) > 1_048_576


@both_brokers
def test_malformed_corpus_is_dead_lettered_and_good_samples_stored_once(
    data_app, produce, read_topic, topic_names, wait_for, client
):
    topic = topic_names["KAFKA_TOPIC"]
    patients = [uuid.uuid4() for _ in range(4)]
    good = [
        json.dumps(vitals_message(patients[i % 4], i // 4)).encode() for i in range(len(CORPUS))
    ]
    stream: list[bytes] = []
    for i, (_name, bad, _reason) in enumerate(CORPUS):
        stream += [good[i], bad]
        if i % 5 == 0:
            # An exact repeat, as a producer retrying after a lost acknowledgement sends.
            stream.append(good[i])
    repeats = len(stream) - len(good) - len(CORPUS)
    produce(topic, stream)
    consumer_of(data_app).start()

    wait_for(
        lambda: stored_rows(data_app) >= len(good),
        timeout=30,
        message=f"{len(good)} good samples stored",
    )
    dead = {m.value(): m for m in read_topic(topic_names["KAFKA_DLQ_TOPIC"], len(CORPUS))}
    wrong = []
    for name, message, reason in CORPUS:
        # A dead letter holds the start of a message too large to copy whole.
        copy = message[:COPY_LIMIT_BYTES]
        if copy not in dead:
            wrong.append(f"{name}: not dead-lettered")
            continue
        headers = dict(dead[copy].headers())
        given = headers["dlq.reason"].decode()
        if reason not in given:
            wrong.append(f"{name}: reason {given!r} does not mention {reason!r}")
        if headers["dlq.topic"].decode() != topic:
            wrong.append(f"{name}: dlq.topic {headers['dlq.topic']!r}")
    assert not wrong, "\n".join(wrong)

    # Repeats that come later, once the originals are stored and committed.
    produce(topic, good[:3])
    later = [json.dumps(vitals_message(patient, 100)).encode() for patient in patients]
    produce(topic, later)
    expected = len(good) + len(later)
    wait_for(
        lambda: stored_rows(data_app) >= expected,
        timeout=30,
        message=f"{expected} good samples stored",
    )

    def settled():
        response = client.get("/health")
        consumed = len(stream) + 3 + len(later)
        return response if response.json["consumer"]["consumed"] == consumed else None

    health = wait_for(settled, timeout=30, message="every message consumed")
    assert health.status_code == 200, health.json
    status = health.json["consumer"]
    assert status["state"] == "running"
    assert stored_rows(data_app) == status["stored"] == expected
    assert status["duplicates"] == repeats + 3
    assert status["dead_lettered"] == len(CORPUS)


# -- a broker that restarts empty ----------------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RestartableBroker]:
    with RestartableBroker(tmp_path / "tansu.log") as broker:
        yield broker


def test_consumer_resumes_when_the_broker_restarts_without_its_topic(
    make_data_app, broker, topic_names, wait_for, caplog
):
    app = make_data_app(KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap)
    topic = topic_names["KAFKA_TOPIC"]
    patient = uuid.uuid4()
    consumer_of(app).start()
    wait_for(
        lambda: consumer_of(app).status["assigned_partitions"] == 3,
        timeout=30,
        message="partitions assigned",
    )
    send_samples(broker.bootstrap, topic, [vitals_message(patient, 0)])
    wait_for(lambda: stored_rows(app) == 1, message="a sample stored")

    caplog.clear()
    broker.kill()
    broker.start()

    def handed_nothing() -> bool:
        return any(
            record.getMessage() == "partitions assigned" and record.partitions == []
            for record in caplog.records
        )

    # The consumer rejoins the group while its topic is missing, and is handed nothing.
    wait_for(handed_nothing, timeout=30, message="the consumer to rejoin without partitions")
    # Then the topic comes back as it was, as a producer starting up would create it.
    ensure_topic(broker.bootstrap, topic, TopicSettings(partitions=3))
    wait_for(
        lambda: consumer_of(app).status["assigned_partitions"] > 0,
        timeout=30,
        message="partitions assigned again",
    )
    send_samples(broker.bootstrap, topic, [vitals_message(patient, 1)])
    wait_for(lambda: stored_rows(app) == 2, message="a sample stored after the restart")
    assert consumer_of(app).status["state"] == "running"
