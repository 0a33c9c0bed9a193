"""The producer across a broker restart that forgets every topic and producer id.

The embedded broker keeps everything in memory, so a restart hands the idempotent producer
a broker that has never heard of it. Vitals must start flowing again by themselves.
"""

import json
import signal
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from patient_app.producer import KafkaService
from shared.broker import free_port, start_broker
from shared.kafka import wait_for_broker
from shared.schemas import vitals_schema
from tests.helpers import read_messages

pytestmark = pytest.mark.integration

# A monitor that stays silent longer than this after a broker restart is an outage.
RECOVERY_DEADLINE_S = 30.0


class RestartableBroker:
    """A private tansu on a fixed port, which a test may kill and start again."""

    def __init__(self, log_file: Path) -> None:
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.log_file = log_file
        self.processes: list[subprocess.Popen] = []

    def start(self) -> None:
        self.processes.append(start_broker(self.port, self.log_file))
        wait_for_broker(self.bootstrap, deadline_s=30)

    def kill(self) -> None:
        """Die without a clean shutdown, as a crashed or OOM-killed broker does."""
        process = self.processes[-1]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                process.wait(10)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RestartableBroker]:
    # Not the session broker: killing that one would break every other test.
    broker = RestartableBroker(tmp_path / "tansu.log")
    try:
        broker.start()
        yield broker
    finally:
        broker.close()


@pytest.fixture
def kafka(broker: RestartableBroker) -> Iterator[KafkaService]:
    service = KafkaService(broker.bootstrap, f"vitals-{uuid.uuid4().hex[:10]}", partitions=3)
    service.start()
    yield service
    # Short: after a failed recovery the queue holds samples that will never be delivered.
    service.stop(timeout=1.0)


def sample(patient_uuid: uuid.UUID) -> dict:
    return {"patient_uuid": str(patient_uuid), "patient_name": "Ivan Petrov",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "pulse": 72, "resp_rate": 16, "bp": "120/80", "spo2": 97, "temperature": 36.8}


def test_samples_flow_again_after_the_broker_restarts_empty(broker, kafka, wait_for):
    patient = uuid.uuid4()
    for _ in range(3):
        kafka.send_metrics(patient, sample(patient))

    def delivered(count: int) -> bool:
        kafka.poll(0)
        return kafka.stats["delivered"] >= count

    wait_for(lambda: delivered(3), message="3 samples delivered before the restart")

    broker.kill()
    broker.start()
    before = dict(kafka.stats)
    sent_after_kill = 0

    def send_one_and_check() -> bool:
        nonlocal sent_after_kill
        # Sending must never raise while the producer is finding its feet again.
        kafka.send_metrics(patient, sample(patient))
        sent_after_kill += 1
        return delivered(before["delivered"] + 1)

    try:
        wait_for(send_one_and_check, timeout=RECOVERY_DEADLINE_S, interval=0.2,
                 message="a sample delivered to the restarted broker")
    except AssertionError as exc:
        pytest.fail(f"{exc}; producer stats {kafka.stats}")

    # The broker never reports a fatal error here: the producer noticed the stall itself.
    assert kafka.stats["producer_restarts"] >= 1
    # Nothing sent after the crash is lost: what the stuck producer held was sent again.
    wait_for(lambda: kafka.poll(0) or kafka.health()["undelivered"] == 0,
             message="every queued sample delivered")
    assert kafka.stats["failed"] == 0, kafka.stats
    messages = read_messages(broker.bootstrap, kafka.topic, sent_after_kill, timeout=15)
    assert len(messages) == sent_after_kill, kafka.stats
    for message in messages:
        body = json.loads(message.value())
        assert message.key().decode() == body["patient_uuid"] == str(patient)
        assert vitals_schema.validate(body) == {}
