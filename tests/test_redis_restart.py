"""The analysis path across a Redis crash: monitor_app (gunicorn) -> Redis -> Celery worker ->
analyser -> database, as separate processes, while Redis is killed and comes back empty on the
same port.

Redis keeps nothing on disk, so the restarted one has no queue, no cache and no generation
counters. While it is down the API must keep serving from the database (uncached, unlimited,
without live updates); afterwards the worker must reconnect by itself, and its sweeper must
re-queue what was created meanwhile, so that every notification ends analysed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websocket
from sqlalchemy.orm import Session

from devserver.ports import free_port
from devserver.processes import Processes, RestartableRedis, get_json, request_json, wait_for_log
from shared.auth.roles import Role
from shared.config import DEFAULT_WARD_ID
from shared.db import make_engine, migrate
from shared.models import Patient
from tests.auth import account_in, write_worker_token
from tests.processes import receive_until

pytestmark = pytest.mark.integration

# Short enough that the sweeper re-queues within seconds, longer than AI_API_TIMEOUT as the
# worker requires.
WORKER_SETTINGS = {
    "SWEEP_INTERVAL_SECONDS": "0.5",
    "ANALYSIS_STALE_SECONDS": "3",
    "AI_API_TIMEOUT": "2",
    "METRICS_PORT": "0",
}
# Everything created before the crash or during the outage must be analysed within this long
# after Redis is back: the worker's reconnection back-off, one staleness period and the
# analyses themselves, on a loaded machine.
RECOVERY_DEADLINE_S = 40.0
# What Celery's consumer logs when it loses the broker, and when it has it back.
LOST_BROKER = "Connection to broker lost"
CONNECTED = "Connected to redis://"
# What each monitor_app worker logs when its live-event subscription (re)starts.
HUB_CONNECTED = "live events connected"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RestartableRedis]:
    """A Redis of this test's own: the one it kills is never shared."""
    with RestartableRedis(tmp_path / "redis.log") as server:
        yield server


@dataclass(frozen=True)
class Api:
    """monitor_app's API, called by an admin."""

    url: str
    token: str

    def call(
        self, path: str, method: str = "GET", body: object = None, expect: int = 200
    ) -> tuple[dict[str, str], Any]:
        """(headers, JSON body) of a request that must answer `expect`, never a 5xx or
        silence."""
        return call(self.url + path, method, body, expect, self.token)


@pytest.fixture
def system(
    tmp_path: Path, redis_server: RestartableRedis, wait_for
) -> Iterator[tuple[Processes, str, uuid.UUID, Api]]:
    """monitor_app (2 gunicorn workers), a Celery worker and the analyser, on the private
    Redis and a SQLite file holding one patient and an admin; (processes, monitor URL,
    patient UUID, the admin's API)."""
    database_url = f"sqlite:///{tmp_path / 'vigil.db'}"
    patient_uuid = _add_patient(database_url, "Olga Smirnova")
    admin = account_in(database_url, Role.ADMIN)
    analyser_port, monitor_port = free_port(), free_port()
    processes = Processes(
        tmp_path,
        {
            **redis_server.settings(),
            "REDIS_NAMESPACE": f"test-{uuid.uuid4().hex[:10]}",
            "DATABASE_URL": database_url,
            "AI_API_URL": f"http://127.0.0.1:{analyser_port}/api/v1/analyse",
            "AI_API_TOKEN_FILE": str(tmp_path / "ai-api-token"),
        },
    )
    write_worker_token(tmp_path / "ai-api-token")
    monitor = f"http://127.0.0.1:{monitor_port}"
    try:
        processes.start_analyser(
            analyser_port, ANALYSER_MIN_LATENCY="0.05", ANALYSER_MAX_LATENCY="0.2"
        )
        processes.start_worker(**WORKER_SETTINGS)
        # Rate limits off: with them on, changes wait for Redis (503: test_rate_limits). This
        # test is about what becomes of changes made while Redis is down.
        processes.start_monitor("monitor", monitor_port, RATE_LIMIT_ENABLED="false")
        wait_for(
            lambda: get_json(f"http://127.0.0.1:{analyser_port}/health")[0] == 200,
            timeout=60,
            interval=0.1,
            message="the analyser",
        )
        wait_for(
            lambda: _health(processes, monitor).get("status") == "ok",
            timeout=60,
            interval=0.1,
            message="monitor_app healthy",
        )
        wait_for(
            lambda: processes.log("monitor").count(HUB_CONNECTED) >= 2,
            timeout=60,
            interval=0.1,
            message="both monitor_app workers subscribed to live events",
        )
        wait_for_log(processes, "worker", "ready.", timeout=60)
        yield processes, monitor, patient_uuid, Api(f"{monitor}/api/v1", admin.token)
    finally:
        processes.stop_all()


def _add_patient(database_url: str, name: str) -> uuid.UUID:
    """Migrate the database and add a patient; done up front, so that the apps do not race
    each other to migrate a fresh file."""
    engine = make_engine(database_url)
    try:
        migrate(engine)
        patient_uuid = uuid.uuid4()
        with Session(engine) as session, session.begin():
            session.add(Patient(uuid=patient_uuid, name=name))
        return patient_uuid
    finally:
        engine.dispose()


def _health(processes: Processes, monitor: str) -> dict[str, Any]:
    processes.check_running("monitor")
    return get_json(f"{monitor}/health")[1] or {}


def call(
    url: str, method: str = "GET", body: object = None, expect: int = 200, token: str | None = None
) -> tuple[dict[str, str], Any]:
    """(headers, JSON body) of a request that must answer `expect`, never a 5xx or silence."""
    status, headers, data = request_json(url, method, body, token)
    assert status == expect, f"{method} {url} answered {status}: {data}"
    return headers, data


def create(api: Api, user_id: uuid.UUID, text: str, patient_uuid: uuid.UUID | None = None) -> str:
    body = {"user_id": str(user_id), "title": "Check", "text": text}
    if patient_uuid is not None:
        body["patient_uuid"] = str(patient_uuid)
    _, notification = api.call("/notifications", "POST", body, expect=201)
    assert notification["processing_status"] == "pending"
    return notification["id"]


def statuses(api: Api, user_id: uuid.UUID) -> dict[str, str]:
    """id -> processing status of every notification of `user_id`."""
    _, notifications = api.call(f"/notifications?user_id={user_id}&page_size=200")
    return {n["id"]: n["processing_status"] for n in notifications}


def all_completed(api: Api, user_id: uuid.UUID, ids: set[str]) -> dict[str, str] | None:
    current = statuses(api, user_id)
    assert set(current) == ids
    done = all(status == "completed" for status in current.values())
    return current if done else None


def test_every_notification_is_analysed_after_redis_restarts_empty(
    system, redis_server: RestartableRedis, wait_for
):
    processes, monitor, patient_uuid, api = system
    # A recipient that exists: the ward, whose notifications are only this test's.
    user = DEFAULT_WARD_ID

    before = {
        create(api, user, "Infusion pump failed: occlusion error on line 2"),
        create(api, user, "Attention: bed 4 alarm", patient_uuid),
        create(api, user, "Routine check done"),
    }
    wait_for(
        lambda: all_completed(api, user, before),
        timeout=30,
        interval=0.2,
        message="the analyses before the crash",
    )
    first = sorted(before)[0]

    def cached_unread() -> bool:
        # Retried: storing the last analysis bumps the cache generation just after its commit.
        headers, notification = api.call(f"/notifications/{first}")
        return headers["X-Cache"] == "hit" and notification["read_at"] is None

    # A cached copy, unread: marking it read while Redis is down must not leave it served.
    wait_for(cached_unread, timeout=20, interval=0.2, message="the notification cached")
    sockets: list[websocket.WebSocket] = []
    try:
        # Several clients, so both gunicorn workers are likely to serve one.
        for _ in range(2):
            sockets.append(
                websocket.create_connection(
                    f"{monitor.replace('http', 'ws', 1)}/api/v1/ws",
                    timeout=30,
                    header=[f"Authorization: Bearer {api.token}"],
                )
            )
        for ws in sockets:
            assert json.loads(ws.recv()) == {"type": "hello", "live": True}

        redis_server.kill()
        lost_at = wait_for_log(processes, "worker", LOST_BROKER, timeout=30)
        during = check_serving_without_redis(api, monitor, user, patient_uuid, before, first)
        for ws in sockets:
            receive_until(ws, lambda e: e == {"type": "live", "live": False})
        # The sweeper tries to re-queue what was created meanwhile, and cannot yet.
        wait_for_log(processes, "worker", "could not enqueue analysis", timeout=30, after=lost_at)

        restarted_at = len(processes.log("monitor"))
        redis_server.start()
        wait_for_log(processes, "worker", CONNECTED, timeout=RECOVERY_DEADLINE_S, after=lost_at)
        try:
            wait_for(
                lambda: all_completed(api, user, before | during),
                timeout=RECOVERY_DEADLINE_S,
                interval=0.2,
                message="every notification analysed after the restart",
            )
        except AssertionError as exc:
            pytest.fail(f"{exc}: {statuses(api, user)}\nworker:\n{processes.log('worker')[-4000:]}")
        for name in ("monitor", "worker", "analyser"):
            processes.check_running(name)

        # Live updates flow again, through every gunicorn worker's subscription.
        for ws in sockets:
            receive_until(ws, lambda e: e == {"type": "live", "live": True})
        wait_for(
            lambda: processes.log("monitor").count(HUB_CONNECTED, restarted_at) >= 2,
            timeout=RECOVERY_DEADLINE_S,
            interval=0.2,
            message="both monitor_app workers subscribed again",
        )
        newest = sorted(during)[0]
        api.call(f"/notifications/{newest}/read", "POST")
        for ws in sockets:
            receive_until(
                ws, lambda e: e["type"] == "notification.read" and e["notification"]["id"] == newest
            )
    finally:
        for ws in sockets:
            ws.close()

    def cached_read() -> bool:
        headers, notification = api.call(f"/notifications/{first}")
        assert notification["read_at"] is not None  # never the copy cached before the crash
        return headers["X-Cache"] == "hit"

    # monitor_app has its cache back, and its health.
    wait_for(cached_read, timeout=20, interval=0.2, message="cached reads again")
    wait_for(
        lambda: _health(processes, monitor).get("status") == "ok",
        timeout=20,
        interval=0.2,
        message="monitor_app healthy again",
    )


def check_serving_without_redis(
    api: Api, monitor: str, user: uuid.UUID, patient_uuid: uuid.UUID, before: set[str], first: str
) -> set[str]:
    """Reads fall through to the database, writes are committed, health says degraded;
    marks `first` read and returns the ids of the notifications created meanwhile."""
    _, patients = api.call("/patients")
    # Sign-in does not depend on Redis: without it, no token still means no data.
    call(f"{api.url}/patients", expect=401)
    call(f"{api.url}/notifications/{first}", expect=401)
    assert [p["uuid"] for p in patients] == [str(patient_uuid)]
    headers, completed = api.call(f"/notifications?user_id={user}&status=completed")
    assert headers["X-Cache"] == "miss"
    assert {n["id"] for n in completed} == before
    _, of_patient = api.call(f"/notifications?patient_uuid={patient_uuid}&read=false")
    assert [n["text"] for n in of_patient] == ["Attention: bed 4 alarm"]

    during = {
        create(api, user, "Careful: patient in bed 2 is agitated"),
        create(api, user, "Warning: bed 4 pulse rising", patient_uuid),
    }
    _, marked = api.call(f"/notifications/{first}/read", "POST")
    assert marked["read_at"] is not None
    headers, shown = api.call(f"/notifications/{first}")
    assert (shown["read_at"], headers["X-Cache"]) == (marked["read_at"], "miss")
    _, read = api.call(f"/notifications?user_id={user}&read=true")
    assert [n["id"] for n in read] == [first]
    _, pending = api.call(f"/notifications?user_id={user}&status=pending")
    assert {n["id"] for n in pending} == during

    _, health = call(f"{monitor}/health", token=api.token)
    assert (health["status"], health["database"]) == ("degraded", "ok")
    assert health["redis"] != "ok"
    return during
