"""Faults only a durable, replicated broker survives, on Apache Kafka clusters of the test's own.

The simulator (patient_app) and data_app run as processes, as in production. Each test kills
brokers outright mid-stream, brings them back on their data, then stops the simulator and
counts: every sample it made is stored exactly once, nothing is lost, nothing duplicated, no
patient misses a sample. The recovery times are printed (`pytest -s` shows them).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devserver.apache_kafka import KafkaCluster
from devserver.ports import free_port
from devserver.processes import Processes, get_json, wait_until
from shared.auth.roles import Role
from tests.auth import get_json_as_admin, token_for
from tests.helpers import StoredSamples, murmur2_partition
from tests.processes import data_app_processes

pytestmark = [pytest.mark.integration, pytest.mark.apache_kafka]

PATIENTS = 5
INTERVAL_S = 0.2  # 25 samples a second in all
PARTITIONS = 3


@dataclass
class Pipeline:
    """The simulator and data_app on a cluster, and a reader of data_app's database."""

    cluster: KafkaCluster
    processes: Processes
    stored: StoredSamples
    topic: str
    patient_url: str
    data_url: str

    def check_running(self) -> None:
        for name in ("data", "patients"):
            self.processes.check_running(name)

    def simulator(self) -> dict:
        """The simulator's producer figures: sent, delivered, undelivered, failed, resent."""
        status, body = get_json_as_admin(self.patient_url)
        return body["kafka"] if status in (200, 503) else {}

    def wait_stored_after(
        self,
        moment: datetime | None,
        count: int,
        timeout: float,
        what: str,
        patient: uuid.UUID | None = None,
    ) -> float:
        """Wait until `count` samples (taken after `moment`, of `patient`) are stored; the
        seconds it took."""
        started = time.monotonic()

        def flowing() -> bool:
            self.check_running()
            return self.stored.count(moment, patient) >= count

        wait_until(flowing, timeout, interval=0.1, message=what)
        return time.monotonic() - started

    def stop_and_count(self) -> dict:
        """Stop the simulator cleanly; its last figures, once data_app has stored them all."""
        self.processes.stop("patients")
        stats = final_producer_stats(self.processes.log("patients"))
        made = stats["sent"] - stats["resent"]
        wait_until(
            lambda: self.stored.count() >= made,
            60,
            interval=0.2,
            message=f"{made} samples stored ({self.stored.count()} so far)",
        )
        return stats


def final_producer_stats(log: str) -> dict:
    """The figures patient_app logs as its producer stops (JSON logs, one object a line)."""
    for line in reversed(log.splitlines()):
        if '"producer stopped"' in line:
            return json.loads(line)
    raise AssertionError(f"patient_app logged no 'producer stopped':\n{log[-3000:]}")


def summary(stats: dict) -> str:
    return ", ".join(f"{key} {stats[key]}" for key in ("sent", "delivered", "resent", "failed"))


def check_every_sample_stored_once(pipeline: Pipeline, stats: dict) -> None:
    made = stats["sent"] - stats["resent"]
    assert stats["failed"] == 0 and stats["undelivered"] == 0, stats
    keys = Counter(pipeline.stored.keys())
    assert sum(keys.values()) == len(keys), "a sample was stored twice"
    assert len(keys) == made, f"{len(keys)} stored of {made} made: {stats}"
    per_patient = Counter(patient for patient, _moment in keys)
    # The simulator sends every patient's sample each round: equal counts mean no gap.
    assert len(per_patient) == PATIENTS
    assert len(set(per_patient.values())) == 1, per_patient


def start_pipeline(
    cluster: KafkaCluster, folder: Path, redis_settings: dict, **settings: str
) -> Pipeline:
    topic = f"vitals-{uuid.uuid4().hex[:10]}"
    processes = data_app_processes(
        folder,
        cluster.bootstrap,
        KAFKA_TOPIC=topic,
        KAFKA_DLQ_TOPIC=f"{topic}.dlq",
        KAFKA_TOPIC_PARTITIONS=str(PARTITIONS),
        **redis_settings,
        **settings,
    )
    ports = {"data": free_port(), "patients": free_port()}
    processes.start_gunicorn("data", "data_app", ports["data"])
    processes.start_simulator(
        "patients", ports["patients"], "--patients", str(PATIENTS), "--interval", str(INTERVAL_S)
    )
    return Pipeline(
        cluster,
        processes,
        StoredSamples(folder / "vigil.db"),
        topic,
        f"http://127.0.0.1:{ports['patients']}/health",
        f"http://127.0.0.1:{ports['data']}/health",
    )


@pytest.fixture
def run_pipeline(tmp_path: Path, redis_settings: dict) -> Iterator:
    pipelines: list[Pipeline] = []

    def run(cluster: KafkaCluster, **settings: str) -> Pipeline:
        pipelines.append(start_pipeline(cluster, tmp_path, redis_settings, **settings))
        return pipelines[-1]

    yield run
    for pipeline in pipelines:
        pipeline.processes.stop_all()
        pipeline.stored.close()


def test_a_single_broker_killed_and_restarted_on_its_data_loses_nothing(
    tmp_path: Path, run_pipeline
):
    with KafkaCluster(1, tmp_path / "kafka", tmp_path / "kafka-logs") as cluster:
        pipeline = run_pipeline(cluster)
        pipeline.wait_stored_after(None, 50, 60, "samples stored")

        cluster.kill(1)
        killed_at = datetime.now(UTC)
        # The simulator holds what it cannot deliver.
        wait_until(
            lambda: pipeline.simulator().get("undelivered", 0) >= PATIENTS,
            20,
            message="the simulator to queue samples while the broker is down",
        )
        outage_started = time.monotonic()
        cluster.start_node(1)
        back_at = datetime.now(UTC)
        restart_s = time.monotonic() - outage_started
        # Taken while the broker was down: delivered late, stored all the same.
        held_s = pipeline.wait_stored_after(killed_at, PATIENTS, 60, "samples held in the outage")
        flowing_s = pipeline.wait_stored_after(back_at, PATIENTS, 60, "samples after the restart")
        stats = pipeline.stop_and_count()

    check_every_sample_stored_once(pipeline, stats)
    print(
        f"\nsingle broker: restart to ready {restart_s:.1f} s; held samples stored "
        f"{held_s:.1f} s after; new samples flowing {flowing_s:.1f} s after; {summary(stats)}"
    )


def test_a_cluster_loses_nothing_when_leaders_die_and_holds_writes_without_a_quorum(
    tmp_path: Path, run_pipeline
):
    with KafkaCluster(3, tmp_path / "kafka", tmp_path / "kafka-logs") as cluster:
        pipeline = run_pipeline(
            cluster, KAFKA_REPLICATION_FACTOR="3", KAFKA_MIN_INSYNC_REPLICAS="2"
        )
        pipeline.wait_stored_after(None, 50, 90, "samples stored")

        # The leader of a partition the simulator writes to.
        _, patients = get_json(
            pipeline.patient_url.replace("/health", "/api/v1/patients"), token=token_for(Role.ADMIN)
        )
        patient = uuid.UUID(patients[0]["uuid"])
        busy = murmur2_partition(str(patient).encode(), PARTITIONS)
        first = cluster.leader_of(pipeline.topic, busy)
        cluster.kill(first)
        first_killed_at = datetime.now(UTC)
        # Two replicas remain in sync: the partition gets a new leader, and that patient's
        # samples are written and read again.
        failover_s = pipeline.wait_stored_after(
            first_killed_at, 10, 60, "the busy partition's samples to flow again", patient
        )
        assert cluster.leader_of(pipeline.topic, busy) != first

        # One replica left: with min.insync.replicas=2 no write may succeed. The producer
        # must hold its samples and keep retrying, not drop them.
        second = next(n for n in cluster.nodes if n != first)
        cluster.kill(second)
        wait_until(
            lambda: pipeline.simulator().get("undelivered", 0) >= 10 * PATIENTS,
            60,
            message="the simulator to hold samples while writes wait for replicas",
        )
        assert pipeline.simulator()["failed"] == 0
        held_at = datetime.now(UTC)
        outage_started = time.monotonic()
        cluster.start_node(second)
        restart_s = time.monotonic() - outage_started
        back_at = datetime.now(UTC)
        held_s = pipeline.wait_stored_after(held_at, PATIENTS, 90, "held samples stored")
        flowing_s = pipeline.wait_stored_after(back_at, PATIENTS, 60, "samples after the restart")
        cluster.start_node(first)
        stats = pipeline.stop_and_count()

    check_every_sample_stored_once(pipeline, stats)
    print(
        f"\ncluster: new leader, ingest on within {failover_s:.1f} s; second broker back in "
        f"{restart_s:.1f} s; held samples stored {held_s:.1f} s after; new samples "
        f"{flowing_s:.1f} s after; {summary(stats)}"
    )
