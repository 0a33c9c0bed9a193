"""Two data_app instances in one consumer group on PostgreSQL; one is SIGKILLed mid-stream.

The survivor takes over the dead one's partitions from the offsets it committed. Every sample
is stored exactly once, and the alerts stay one per band change across the hand-over: a batch
the dead instance stored but never committed in Kafka is read again and raises nothing twice.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer
from sqlalchemy import create_engine, func, select
from sqlalchemy.pool import NullPool

from data_app.alert_text import alert_message
from data_app.alerts import AlertState, advance
from devserver.ports import free_port
from devserver.processes import Processes
from shared.alarm_limits import DEFAULT_LIMITS
from shared.alarm_text import alarm_message
from shared.alarms import AlarmEngine, EventKind, Sample
from shared.kafka import TopicSettings, ensure_topic, producer_config
from shared.models import Notification, Patient, PatientMetric
from shared.news2 import score_sample
from shared.sample import VitalsSample
from tests.auth import get_json_as_admin
from tests.data_app.test_alert_storage import CRITICAL, MEDIUM, NORMAL
from tests.helpers import both_brokers
from tests.processes import data_app_processes

pytestmark = [pytest.mark.integration, both_brokers]

PATIENTS = 12
PARTITIONS = 6
# Each patient goes through every band change twice: low → medium → high → low, twice.
PHASES = ((NORMAL, 40), (MEDIUM, 40), (CRITICAL, 40), (NORMAL, 40)) * 2
RECOVERY_SAMPLES = 3
START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def series(patient: uuid.UUID, name: str) -> list[VitalsSample]:
    """One patient's samples as data_app decodes them, 1 s apart."""
    samples = []
    for vitals, count in PHASES:
        for _ in range(count):
            moment = START + timedelta(seconds=len(samples))
            samples.append(
                VitalsSample(patient_uuid=patient, patient_name=name, timestamp=moment, **vitals)
            )
    return samples


def message(sample: VitalsSample) -> bytes:
    """The sample as a bedside monitor sends it."""
    return json.dumps(
        {
            "patient_uuid": str(sample.patient_uuid),
            "patient_name": sample.patient_name,
            "timestamp": sample.timestamp.isoformat(),
            "pulse": sample.pulse,
            "resp_rate": sample.resp_rate,
            "bp": sample.bp,
            "spo2": sample.spo2,
            "temperature": sample.temperature,
        }
    ).encode()


def expected_titles(samples: list[VitalsSample]) -> list[str]:
    """The notifications one patient's samples must raise, by the alert rules and the alarm
    engine (default limits and timing) alone."""
    state, titles = AlertState(), []
    engine, episodes = AlarmEngine(DEFAULT_LIMITS), {}
    for sample in samples:
        news2 = score_sample(sample)
        state, decision = advance(state, news2.band, sample.timestamp, RECOVERY_SAMPLES)
        if decision is not None:
            titles.append(alert_message(sample.patient_name, news2, sample, decision)[0])
        step = engine.step(episodes, Sample.from_vitals(sample))
        episodes = step.episodes
        for event in step.events:
            if event.kind is not EventKind.RESOLVED:
                title, _text = alarm_message(
                    sample.patient_name,
                    event.condition,
                    event.priority,
                    event.value,
                    event.limit,
                )
                titles.append(title)
    return titles


@pytest.fixture
def database(postgres_url: str) -> Iterator:
    engine = create_engine(postgres_url, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def members(
    kafka_bootstrap, topic_names, redis_settings, postgres_url, tmp_path: Path
) -> Iterator[Processes]:
    processes = data_app_processes(
        tmp_path,
        kafka_bootstrap,
        **topic_names,
        **redis_settings,
        DATABASE_URL=postgres_url,
        KAFKA_TOPIC_PARTITIONS=str(PARTITIONS),
        ALERT_RECOVERY_SAMPLES=str(RECOVERY_SAMPLES),
        # Small batches: the drain takes many commits, so the kill lands between two of them.
        CONSUMER_BATCH_SIZE="10",
    )
    try:
        yield processes
    finally:
        processes.stop_all()


def test_the_survivor_stores_everything_once_and_alerts_once_per_band_change(
    members, database, kafka_bootstrap, topic_names, wait_for
):
    topic = topic_names["KAFKA_TOPIC"]
    ensure_topic(kafka_bootstrap, topic, TopicSettings(partitions=PARTITIONS))
    ports = {name: free_port() for name in ("one", "two")}
    for name, port in ports.items():
        members.start_gunicorn(name, "data_app", port)

    def assigned(name: str) -> int:
        members.check_running(name)
        status, body = get_json_as_admin(f"http://127.0.0.1:{ports[name]}/health")
        return body["consumer"]["assigned_partitions"] if status == 200 else 0

    wait_for(
        lambda: (
            assigned("one") and assigned("two") and assigned("one") + assigned("two") == PARTITIONS
        ),
        timeout=60,
        interval=0.2,
        message="both members to share the partitions",
    )

    patients = {uuid.uuid4(): f"Patient {n:02d}" for n in range(PATIENTS)}
    samples = {patient: series(patient, name) for patient, name in patients.items()}
    total = sum(len(s) for s in samples.values())
    # Interleaved as monitors send them, each keyed by its patient as patient_app keys them.
    producer = Producer(producer_config(kafka_bootstrap))
    for row in zip(*samples.values(), strict=True):
        for sample in row:
            producer.produce(topic, message(sample), key=str(sample.patient_uuid))
        producer.poll(0)
    assert producer.flush(30) == 0, "samples were not delivered in time"

    def stored() -> int:
        with database.connect() as connection:
            return connection.scalar(select(func.count()).select_from(PatientMetric))

    wait_for(lambda: stored() >= total // 5, timeout=60, message="the drain to get going")
    members.kill("one")
    partway = stored()
    assert partway < total, "killed after the drain had finished: nothing to test"

    killed = time.monotonic()
    wait_for(
        lambda: assigned("two") == PARTITIONS,
        timeout=30,
        interval=0.2,
        message="the survivor to own every partition",
    )
    took_over_s = time.monotonic() - killed
    wait_for(lambda: stored() >= total, timeout=90, interval=0.2, message=f"{total} samples")
    drained_s = time.monotonic() - killed

    with database.connect() as connection:
        keys = Counter(
            connection.execute(
                select(Patient.uuid, PatientMetric.timestamp).join(PatientMetric.patient)
            ).all()
        )
        titles = Counter(
            connection.execute(
                select(Patient.uuid, Notification.title).join(
                    Patient, Notification.patient_id == Patient.id
                )
            ).all()
        )
    assert sum(keys.values()) == len(keys) == total, "a sample was stored twice or lost"
    assert set(keys) == {(s.patient_uuid, s.timestamp) for p in samples.values() for s in p}
    expected = Counter(
        (patient, title)
        for patient, series_ in samples.items()
        for title in expected_titles(series_)
    )
    # Six band changes per pass, two passes: low→medium, medium→high, high→low, each twice;
    # and the limit alarms of the high stretches.
    assert sum(n for (_, title), n in expected.items() if "NEWS2" in title) == PATIENTS * 6
    assert sum(n for (_, title), n in expected.items() if "priority" in title) > 0
    assert titles == expected
    print(
        f"\nfailover: killed at {partway} of {total} stored; the survivor owned every partition "
        f"{took_over_s:.1f} s later and had stored all {drained_s:.1f} s after the kill; "
        f"{sum(titles.values())} alerts, as the rules give"
    )
