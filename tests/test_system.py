"""The whole pipeline as separate processes, started the way the Procfile starts them:
patient_app (CLI) -> broker -> data_app (gunicorn) -> database -> monitor_app (gunicorn)."""

import json
import os
import signal
import subprocess
import sys

import pytest

from devserver.ports import free_port
from devserver.processes import GUNICORN, ROOT, get_json
from shared.auth.roles import Role
from tests.auth import account_in, get_json_as_admin
from tests.helpers import both_brokers

pytestmark = pytest.mark.integration


@pytest.fixture
def system(kafka_bootstrap, topic_names, redis_settings, tmp_path):
    """Start data_app, monitor_app and one named patient; stop them all afterwards.

    Yields the URLs, the processes, the log directory and an admin's token.
    """
    database_url = f"sqlite:///{tmp_path / 'vigil.db'}"
    admin = account_in(database_url, Role.ADMIN)
    env = {
        **os.environ,
        **topic_names,
        **redis_settings,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "KAFKA_SESSION_TIMEOUT_MS": "2000",
        "KAFKA_GROUP_ID": "system-test",
        "METRICS_INTERVAL": "0.5",
        "PYTHONPATH": str(ROOT),
    }
    ports = {"data": free_port(), "monitor": free_port(), "patient": free_port()}
    commands = {
        "data": [GUNICORN, "data_app:create_app()", "--bind", f"127.0.0.1:{ports['data']}"],
        "monitor": [
            GUNICORN,
            "monitor_app:create_app()",
            "--bind",
            f"127.0.0.1:{ports['monitor']}",
            "--workers",
            "2",
            "--threads",
            "4",
        ],
        "patient": [
            sys.executable,
            "-m",
            "patient_app",
            "--name",
            "Ivan Petrov",
            "--port",
            str(ports["patient"]),
            "--scenario",
            "sepsis",
        ],
    }
    processes = {}
    for name, command in commands.items():
        log = (tmp_path / f"{name}.log").open("wb")
        processes[name] = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,  # noqa: S603
            stderr=subprocess.STDOUT,
        )
        log.close()
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    yield urls, processes, tmp_path, admin.token
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


@both_brokers
def test_samples_flow_from_simulator_to_api_and_services_stop_cleanly(system, wait_for):
    urls, processes, logs, token = system
    api = urls["monitor"] + "/api/v1"

    def listed():
        status, body = get_json(api + "/patients", token=token)
        return status == 200 and [p for p in body if p["name"] == "Ivan Petrov" and p["latest"]]

    patient = wait_for(listed, timeout=60, interval=0.3, message="the patient in the API")[0]

    def metric_count():
        status, body = get_json(f"{api}/patient/{patient['uuid']}/metrics?limit=1000", token=token)
        return len(body) if status == 200 else 0

    first = wait_for(metric_count, timeout=30, message="metrics of the patient")
    wait_for(lambda: metric_count() >= first + 3, timeout=30, message="metrics to keep growing")
    # What the API just showed is nobody's without a token, on every app.
    assert get_json(api + "/patients")[0] == 401
    assert get_json(f"{api}/patient/{patient['uuid']}/metrics")[0] == 401
    assert get_json(urls["patient"] + "/api/v1/patients")[0] == 401
    assert get_json(urls["data"] + "/metrics")[0] == 401

    status, health = get_json_as_admin(urls["data"] + "/health")
    assert status == 200, health
    assert health["consumer"]["dead_lettered"] == 0
    status, health = get_json_as_admin(urls["patient"] + "/health")
    assert status == 200 and health["monitoring"] is True

    for name, process in processes.items():
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, (logs / f"{name}.log").read_text()[-3000:]
    data_log = (logs / "data.log").read_text()
    assert '"message": "consumer stopped"' in data_log
    assert '"message": "batch stored"' in data_log
    # Every line every process wrote is one JSON object with the standard fields.
    for name in processes:
        for line in (logs / f"{name}.log").read_text().splitlines():
            entry = json.loads(line)
            assert {"timestamp", "level", "message", "module", "function", "line"} <= set(entry)
