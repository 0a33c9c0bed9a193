"""The pipeline across a broker crash: patient_app -> broker -> data_app -> database, as
separate processes, while the broker is killed and comes back empty on the same port.

The embedded broker keeps everything in memory, so the restarted one knows no topic, no
producer id, no consumer group and no committed offset. Vitals must flow again by themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devserver.ports import free_port
from devserver.processes import Processes, RestartableBroker, get_json
from tests.auth import get_json_as_admin
from tests.helpers import StoredSamples
from tests.processes import data_app_processes

pytestmark = pytest.mark.integration

# Samples taken after the broker is back must be stored within this long. The producer
# notices a stall after 10 s (patient_app.producer.VitalsProducer.stall_timeout).
RECOVERY_DEADLINE_S = 15.0
SERVICES = ("data", "patients")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RestartableBroker]:
    with RestartableBroker(tmp_path / "tansu.log") as broker:
        yield broker


@pytest.fixture
def pipeline(
    broker, topic_names, redis_settings, tmp_path: Path
) -> Iterator[tuple[Processes, StoredSamples, dict[str, str]]]:
    """data_app (gunicorn) and five simulated patients on the private broker; their URLs."""
    processes = data_app_processes(tmp_path, broker.bootstrap, **topic_names, **redis_settings)
    database = tmp_path / "vigil.db"
    ports = {name: free_port() for name in SERVICES}
    stored = StoredSamples(database)
    try:
        processes.start_gunicorn("data", "data_app", ports["data"])
        processes.start_simulator(
            "patients", ports["patients"], "--patients", "5", "--interval", "0.5"
        )
        yield (
            processes,
            stored,
            {name: f"http://127.0.0.1:{port}/health" for name, port in ports.items()},
        )
    finally:
        processes.stop_all()
        stored.close()


def test_samples_are_stored_again_after_the_broker_restarts_empty(broker, pipeline, wait_for):
    processes, stored, health_urls = pipeline

    def stored_since(moment: datetime | None, at_least: int):
        def check() -> bool:
            for name in SERVICES:
                processes.check_running(name)
            return stored.count(moment) >= at_least

        return check

    wait_for(stored_since(None, 20), timeout=60, interval=0.2, message="samples stored")

    broker.kill()
    broker.start()
    restarted_at = datetime.now(UTC)
    try:
        # At least one sample of each of the five patients.
        wait_for(
            stored_since(restarted_at, 5),
            timeout=RECOVERY_DEADLINE_S,
            interval=0.2,
            message="samples taken after the restart to be stored",
        )
    except AssertionError as exc:
        pytest.fail(
            f"{exc}\n"
            + "\n".join(f"{name}: {get_json_as_admin(url)[1]}" for name, url in health_urls.items())
        )

    for name in SERVICES:
        processes.check_running(name)
        wait_for(
            lambda name=name: get_json(health_urls[name])[0] == 200,
            timeout=20,
            interval=0.2,
            message=f"{name} healthy",
        )
    _, data = get_json_as_admin(health_urls["data"])
    assert data["consumer"]["assigned_partitions"] > 0, data
    _, patients = get_json_as_admin(health_urls["patients"])
    # No sample was given up on: what the old producer held was sent again.
    assert patients["kafka"]["failed"] == 0, patients
