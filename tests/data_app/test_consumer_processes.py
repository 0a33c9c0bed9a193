"""One data_app with several gunicorn workers, as the Procfile runs it: each worker is a consumer
of the one group, so ingest scales with the host's cores, and every sample is stored once."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from sqlalchemy import create_engine, func, select
from sqlalchemy.pool import NullPool

from devserver.ports import free_port
from devserver.processes import Processes
from shared.kafka import TopicSettings, ensure_topic, producer_config
from shared.models import Patient, PatientMetric
from tests.helpers import both_brokers, vitals_message
from tests.processes import data_app_processes

pytestmark = [pytest.mark.integration, both_brokers]

WORKERS = 2
PARTITIONS = 6
PATIENTS = 30
SAMPLES_EACH = 40


@pytest.fixture
def data_app(
    kafka_bootstrap, topic_names, redis_settings, postgres_url, tmp_path: Path
) -> Iterator[Processes]:
    processes = data_app_processes(
        tmp_path,
        kafka_bootstrap,
        **topic_names,
        **redis_settings,
        DATABASE_URL=postgres_url,
        KAFKA_TOPIC_PARTITIONS=str(PARTITIONS),
        CONSUMER_BATCH_SIZE="20",
    )
    try:
        yield processes
    finally:
        processes.stop_all()


def assignments(log: str) -> dict[int, set[int]]:
    """Each consumer process (by pid) and the partitions it owns now, from data_app's log."""
    owned: dict[int, set[int]] = {}
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # librdkafka's own lines
        if entry.get("message") == "partitions assigned":
            owned[entry["pid"]] = set(entry["partitions"])
        elif entry.get("message") == "partitions revoked":
            owned[entry["pid"]] = set()
    return {pid: partitions for pid, partitions in owned.items() if partitions}


def test_every_worker_consumes_and_every_sample_is_stored_once(
    data_app, kafka_bootstrap, topic_names, postgres_url, wait_for
) -> None:
    processes = data_app
    topic = topic_names["KAFKA_TOPIC"]
    ensure_topic(kafka_bootstrap, topic, TopicSettings(partitions=PARTITIONS))
    processes.start_gunicorn("data", "data_app", free_port(), workers=WORKERS)

    def shared_fairly() -> bool:
        processes.check_running("data")
        owned = assignments(processes.log("data"))
        everything = set().union(*owned.values())
        return len(owned) == WORKERS and everything == set(range(PARTITIONS))

    wait_for(shared_fairly, timeout=90, interval=0.5, message="the workers to share partitions")

    patients = [uuid.uuid4() for _ in range(PATIENTS)]
    producer = Producer(producer_config(kafka_bootstrap))
    for second in range(SAMPLES_EACH):
        for patient in patients:
            sample = vitals_message(patient, second, name=f"Patient {patient.hex[:6]}")
            producer.produce(topic, json.dumps(sample).encode(), key=str(patient))
        producer.poll(0)
    assert producer.flush(30) == 0, "samples were not delivered in time"

    engine = create_engine(postgres_url, poolclass=NullPool)
    try:

        def stored() -> int:
            with engine.connect() as connection:
                return connection.scalar(select(func.count()).select_from(PatientMetric))

        total = PATIENTS * SAMPLES_EACH
        wait_for(lambda: stored() >= total, timeout=90, interval=0.2, message=f"{total} samples")
        with engine.connect() as connection:
            counts = dict(
                connection.execute(
                    select(Patient.uuid, func.count(PatientMetric.id))
                    .join(PatientMetric.patient)
                    .group_by(Patient.uuid)
                ).all()
            )
            kept = dict(connection.execute(select(Patient.uuid, Patient.sample_count)).all())
    finally:
        engine.dispose()
    assert counts == dict.fromkeys(patients, SAMPLES_EACH)
    # The per-patient counters, kept by whichever worker stored each batch, agree.
    assert kept == counts
    # Still both consumers: neither worker died or left the group on the way.
    assert len(assignments(processes.log("data"))) == WORKERS
