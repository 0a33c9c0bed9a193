"""Notifications analysed by a real Celery worker process on a real Redis, calling the
reference analyser as its own HTTP service; alerts raised from vitals reaching WebSocket
clients through a gunicorn-served monitor_app."""

from __future__ import annotations

import json
import re
import signal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import websocket

from devserver.ports import free_port
from devserver.processes import GUNICORN, Processes, get_json
from monitor_app import create_app as create_monitor_app
from shared.auth.roles import Role
from shared.config import DEFAULT_WARD_ID
from shared.db import db, migrate
from tests.auth import create_account, get_json_as_admin, token_for, write_worker_token
from tests.bearer import client_with
from tests.processes import receive_until

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(tmp_path: Path, redis_settings: dict[str, str], wait_for) -> Iterator[dict]:
    """A database, the test's Redis namespace, the analyser (fast) and helpers to start
    workers, which send the analyser an API token from a file; monitor_app in-process for the
    API calls, signed in as an admin whose token also serves a monitor_app the test starts on
    the same database."""
    analyser_port = free_port()
    worker_token = write_worker_token(tmp_path / "ai-api-token")
    settings = {
        **redis_settings,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'vigil.db'}",
        "AI_API_URL": f"http://127.0.0.1:{analyser_port}/api/v1/analyse",
        "AI_API_TOKEN_FILE": str(tmp_path / "ai-api-token"),
    }
    processes = Processes(tmp_path, settings)
    processes.start_analyser(analyser_port, ANALYSER_MIN_LATENCY="0.05", ANALYSER_MAX_LATENCY="0.2")
    monitor = create_monitor_app({"TESTING": True, "RATELIMIT_ENABLED": False, **settings})
    migrate(db.engine(monitor))
    admin = create_account(db.sessionmaker(monitor), Role.ADMIN)
    wait_for(
        lambda: get_json(f"http://127.0.0.1:{analyser_port}/health")[0] == 200,
        timeout=30,
        message="the analyser",
    )
    try:
        yield {
            "processes": processes,
            "client": client_with(monitor, admin.token),
            "token": admin.token,
            "worker_token": worker_token,
            "settings": settings,
            "analyser_port": analyser_port,
        }
    finally:
        processes.stop_all()
        db.engine(monitor).dispose()


def start_worker(stack: dict, wait_for, name: str = "worker", **env: str) -> None:
    processes = stack["processes"]
    worker = processes.start_worker(name, **env)

    def ready() -> bool:
        assert worker.poll() is None, f"{name} exited:\n{processes.log(name)[-2000:]}"
        return "ready." in processes.log(name)

    wait_for(ready, timeout=60, interval=0.1, message=f"{name} ready")


def create(client, text: str, title: str = "Check") -> str:
    """A notification to the ward (a recipient must exist), pending analysis."""
    response = client.post(
        "/api/v1/notifications",
        json={"user_id": str(DEFAULT_WARD_ID), "title": title, "text": text},
    )
    assert response.status_code == 201, response.json
    assert response.json["processing_status"] == "pending"
    return response.json["id"]


def status_of(client, notification_id: str) -> dict:
    return client.get(f"/api/v1/notifications/{notification_id}/status").json


def finished(client, notification_id: str) -> dict | None:
    status = status_of(client, notification_id)
    return status if status["processing_status"] in ("completed", "failed") else None


def test_a_notification_goes_pending_then_completed_with_a_category(stack, wait_for):
    start_worker(stack, wait_for)
    client = stack["client"]
    notification_id = create(client, "Infusion pump failed: occlusion error on line 2")

    status = wait_for(lambda: finished(client, notification_id), timeout=30, message="the analysis")
    assert status["processing_status"] == "completed"
    assert status["category"] == "critical"
    assert 0.70 <= status["confidence"] <= 0.95
    assert status["keywords"][:2] == ["failed", "error"]
    assert status["attempts"] == 1 and status["failure_reason"] is None
    # Celery logs the task's result after the task returns, so after the database shows it.
    log = stack["processes"].log
    wait_for(lambda: "'completed'" in log("worker"), timeout=10, message="the worker's result")
    # The analyser takes no text without a token: the worker sent its own, and never logs it.
    assert stack["worker_token"] not in log("worker")


def test_a_token_the_analyser_refuses_fails_the_analysis_naming_the_setting(stack, wait_for):
    # A clinician's token: genuine, but no right to send texts to the analyser.
    start_worker(stack, wait_for, AI_API_TOKEN=token_for(Role.CLINICIAN))
    client = stack["client"]
    notification_id = create(client, "Infusion pump failed: occlusion error on line 2")

    status = wait_for(lambda: finished(client, notification_id), timeout=30, message="the analysis")
    assert status["processing_status"] == "failed"
    assert "refused the worker's token (403)" in status["failure_reason"]
    assert "AI_API_TOKEN" in status["failure_reason"]
    # Not retried: only the operator can mend it.
    assert status["attempts"] == 1 and status["category"] is None


def test_an_ai_api_that_times_out_ends_failed_with_the_reason(stack, wait_for):
    # The analyser answers in 1 s; the worker waits 0.2 s, retries once, then gives up.
    stack["processes"].stop_all()
    slow_port = free_port()
    stack["processes"].start_analyser(slow_port, ANALYSER_MIN_LATENCY="1", ANALYSER_MAX_LATENCY="1")
    start_worker(
        stack,
        wait_for,
        AI_API_URL=f"http://127.0.0.1:{slow_port}/api/v1/analyse",
        AI_API_TIMEOUT="0.2",
        AI_API_MAX_RETRIES="1",
        AI_API_RETRY_BACKOFF="0.1",
    )
    client = stack["client"]
    notification_id = create(client, "Attention: bed 4 alarm")

    status = wait_for(
        lambda: finished(client, notification_id), timeout=30, message="the analysis to give up"
    )
    assert status["processing_status"] == "failed"
    assert "timed out after 0.2 s" in status["failure_reason"]
    assert "2 attempts" in status["failure_reason"]
    assert status["category"] is None


def test_a_worker_killed_mid_task_leaves_nothing_pending(stack, wait_for):
    # Slow analyses, so the worker is surely killed while it waits for one.
    stack["processes"].stop_all()
    port = free_port()
    stack["processes"].start_analyser(port, ANALYSER_MIN_LATENCY="3", ANALYSER_MAX_LATENCY="3")
    worker_env = {
        "AI_API_URL": f"http://127.0.0.1:{port}/api/v1/analyse",
        "AI_API_TIMEOUT": "4",
        "ANALYSIS_STALE_SECONDS": "5",
        "SWEEP_INTERVAL_SECONDS": "0.5",
    }
    start_worker(stack, wait_for, "doomed", **worker_env)
    client = stack["client"]
    notification_id = create(client, "Careful: patient in bed 2 is agitated")
    wait_for(
        lambda: status_of(client, notification_id)["processing_status"] == "processing",
        timeout=30,
        message="the task to start",
    )
    stack["processes"].running["doomed"].send_signal(signal.SIGKILL)
    stack["processes"].running["doomed"].wait(10)

    start_worker(stack, wait_for, "rescuer", **worker_env)
    status = wait_for(
        lambda: finished(client, notification_id),
        timeout=40,
        message="the sweeper to re-queue it and the analysis to finish",
    )
    assert status["processing_status"] == "completed"
    assert status["category"] == "warning"
    # Once by the killed worker, once after the sweep: the analysis was not repeated.
    assert status["attempts"] == 2


LIMIT_ALARM = re.compile(r": (Pulse|SpO2|Systolic BP) (high|low) \(medium priority\)$")


def vitals(patient: uuid.UUID, second: int, **values) -> dict:
    start = datetime.now(UTC) - timedelta(minutes=10)
    return {
        "patient_uuid": str(patient),
        "patient_name": "Maria Sokolova",
        "timestamp": (start + timedelta(seconds=5 * second)).isoformat(),
        "pulse": 72,
        "resp_rate": 15,
        "bp": "122/78",
        "spo2": 98,
        "temperature": 36.8,
        **values,
    }


def test_a_critical_vitals_stream_raises_one_alert_per_band_change_seen_live(
    stack, wait_for, kafka_bootstrap, topic_names, produce
):
    start_worker(stack, wait_for)
    processes, settings, token = stack["processes"], stack["settings"], stack["token"]
    monitor_port, data_port = free_port(), free_port()
    kafka = {
        **topic_names,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_SESSION_TIMEOUT_MS": "2000",
        "KAFKA_GROUP_ID": "alerts-test",
    }
    processes.start(
        "monitor",
        [
            GUNICORN,
            "monitor_app:create_app()",
            "--bind",
            f"127.0.0.1:{monitor_port}",
            "--workers",
            "2",
            # Streams get at most half a worker's threads: 8 give each worker 4 seats, so the
            # three streams below fit even if the kernel hands all of them to one worker.
            "--threads",
            "8",
        ],
    )
    processes.start(
        "data", [GUNICORN, "data_app:create_app()", "--bind", f"127.0.0.1:{data_port}"], **kafka
    )
    wait_for(
        lambda: get_json(f"http://127.0.0.1:{monitor_port}/health")[0] == 200,
        timeout=60,
        message="monitor_app",
    )
    wait_for(
        lambda: (
            (get_json_as_admin(f"http://127.0.0.1:{data_port}/health")[1] or {})
            .get("consumer", {})
            .get("assigned_partitions")
        ),
        timeout=60,
        message="data_app's consumer to be assigned",
    )

    live = f"ws://127.0.0.1:{monitor_port}/api/v1/ws"
    # Without a token the handshake is refused before any event is sent.
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(live, timeout=30)
    assert refused.value.status_code == 401
    # Several clients, so both gunicorn workers are likely to serve one.
    sockets = [
        websocket.create_connection(live, timeout=30, header=[f"Authorization: Bearer {token}"])
        for _ in range(3)
    ]
    try:
        for ws in sockets:
            assert json.loads(ws.recv())["type"] == "hello"
        patient = uuid.uuid4()
        critical = {"pulse": 125, "resp_rate": 28, "bp": "88/50", "spo2": 88}
        produce(
            topic_names["KAFKA_TOPIC"],
            [vitals(patient, i) for i in range(3)]
            + [vitals(patient, i, **critical) for i in range(3, 9)]
            + [vitals(patient, i) for i in range(9, 14)],
            key=str(patient),
        )

        for ws in sockets:
            seen = receive_until(
                ws,
                lambda e: (
                    e["type"] == "notification.analysed"
                    and "NEWS2" in e["notification"]["title"]
                    and "recovered" not in e["notification"]["title"]
                ),
            )
            types = [e["type"] for e in seen]
            assert "vitals" in types and "notification.created" in types
            alert = seen[-1]["notification"]
            assert alert["category"] == "critical"
            assert alert["patient_uuid"] == str(patient)
            assert "hypoxaemia" in alert["text"]
    finally:
        for ws in sockets:
            ws.close()

    api = f"http://127.0.0.1:{monitor_port}/api/v1"
    user = settings.get("WARD_ID", "00000000-0000-4000-8000-000000000001")

    def both_analysed():
        status, body = get_json(
            f"{api}/notifications?patient_uuid={patient}&user_id={user}", token=token
        )
        # The NEWS2 alerts; the sustained critical vitals also raised limit alarms.
        news2 = [n for n in body or [] if "NEWS2" in n["title"]] if status == 200 else []
        done = len(news2) == 2 and all(n["processing_status"] == "completed" for n in news2)
        return news2 if done else None

    recovery, alert = wait_for(both_analysed, timeout=30, message="two analysed notifications")
    assert alert["title"] == "Maria Sokolova: NEWS2 11, high risk"
    assert recovery["title"].endswith("recovered") and recovery["category"] == "info"

    # 25 s beyond three limits (the delay is 10 s): one medium alarm each, filed as warnings.
    def alarms_analysed():
        status, body = get_json(f"{api}/notifications?patient_uuid={patient}", token=token)
        # The limits' alarms; the worker also finds this patient's monitor silent (its
        # samples are ten minutes old) and raises a no-data alarm.
        alarms = [n for n in body or [] if LIMIT_ALARM.search(n["title"])]
        done = len(alarms) == 3 and all(n["processing_status"] == "completed" for n in alarms)
        return alarms if done else None

    alarms = wait_for(alarms_analysed, timeout=30, message="three analysed alarm notifications")
    assert sorted(n["title"].split(": ", 1)[1] for n in alarms) == [
        "Pulse high (medium priority)",
        "SpO2 low (medium priority)",
        "Systolic BP low (medium priority)",
    ]
    assert {n["category"] for n in alarms} == {"warning"}
    status, samples = get_json(f"{api}/patient/{patient}/metrics?limit=20", token=token)
    assert [s["news2_band"] for s in samples[::-1]] == ["low"] * 3 + ["high"] * 6 + ["low"] * 5
