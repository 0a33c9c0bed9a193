"""`/metrics` under real gunicorn with two workers: whichever worker answers a scrape, it
reports the sum over every worker (prometheus_client's multiprocess mode, set up by
gunicorn.conf.py), and the master cleans up after itself and after its dead workers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import websocket
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from devserver.ports import free_port
from devserver.processes import GUNICORN, Processes
from shared.auth.roles import Role
from tests.auth import account_in, bearer
from tests.bearer import foreign_key_token

pytestmark = pytest.mark.integration

REQUESTS = "vigil_http_requests_total"
N = 40


@dataclass
class Monitor:
    """monitor_app under a gunicorn master, where the master keeps its workers' metrics, and
    an admin's token for the scrapes."""

    processes: Processes
    url: str
    tmp: Path
    token: str

    @property
    def master(self) -> subprocess.Popen:
        return self.processes.running["monitor"]

    def metrics_dir(self) -> Path:
        # The master's temporary folder is made under TMPDIR, which is the test's own.
        [folder] = self.tmp.glob("vigil-prometheus-*")
        return folder

    def workers(self) -> set[int]:
        pid = self.master.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return {int(child) for child in children}

    def scrape(self) -> dict[str, list]:
        """The samples of every family `/metrics` reports, on a fresh connection."""
        scrape = urllib.request.Request(f"{self.url}/metrics", headers=bearer(self.token))
        with urllib.request.urlopen(scrape, timeout=10) as response:  # noqa: S310
            assert response.status == 200
            text = response.read().decode()
        return {f.name: f.samples for f in text_string_to_metric_families(text)}


@pytest.fixture(params=["gunicorn", "python-m"])
def monitor(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    redis_settings: dict[str, str],
    wait_for: Callable[..., object],
) -> Iterator[Monitor]:
    """monitor_app with two workers, as the Procfile runs it (`gunicorn` from the project
    root, with gunicorn.conf.py) or as `python -m monitor_app` does (shared/serve.py)."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    port = free_port()
    database_url = f"sqlite:///{tmp_path / 'vigil.db'}"
    admin = account_in(database_url, Role.ADMIN)
    processes = Processes(
        tmp_path, {**redis_settings, "TMPDIR": str(temp), "DATABASE_URL": database_url}
    )
    if request.param == "gunicorn":
        processes.start_monitor("monitor", port)
    else:
        processes.start(
            "monitor",
            [
                sys.executable,
                "-m",
                "monitor_app",
                "--port",
                str(port),
                "--workers",
                "2",
                "--threads",
                "4",
            ],
        )
    monitor = Monitor(processes, f"http://127.0.0.1:{port}", temp, admin.token)

    def ready() -> bool:
        processes.check_running("monitor")
        # Each worker migrates before it serves; none may be paused while it holds the lock.
        return (
            processes.log("monitor").count('"database schema is up to date"') == 2
            and len(monitor.workers()) == 2
        )

    try:
        wait_for(ready, timeout=60, interval=0.1, message="both workers migrated and serving")
        yield monitor
    finally:
        processes.stop_all()


def http_get(url: str, headers: dict[str, str] | None = None) -> int:
    # urllib opens a new connection for each request, so any worker may take it.
    try:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        error.read()
        return error.code


def summed(samples: list, name: str | None = None, **labels: str) -> float:
    """The sum over `samples` named `name` whose labels include `labels`."""
    return sum(
        s.value for s in samples if name in (None, s.name) and labels.items() <= s.labels.items()
    )


@contextmanager
def only(monitor: Monitor, pid: int) -> Iterator[None]:
    """Connections go to worker `pid`: the other workers are paused, so cannot accept."""
    others = monitor.workers() - {pid}
    for other in others:
        os.kill(other, signal.SIGSTOP)
    try:
        yield
    finally:
        for other in others:
            os.kill(other, signal.SIGCONT)


def per_worker(folder: Path, pid: int, name: str, **labels: str) -> float:
    """One worker's own count, read from its files alone."""
    own = folder.parent / f"worker-{pid}"
    own.mkdir()
    for path in folder.glob(f"*_{pid}.db"):
        shutil.copy(path, own)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(own))
    return registry.get_sample_value(name, {"service": "monitor_app", **labels}) or 0.0


def test_every_scrape_reports_the_sum_over_both_workers(monitor: Monitor) -> None:
    folder = monitor.metrics_dir()
    first, second = sorted(monitor.workers())
    health = {"method": "GET", "endpoint": "/health", "status": "200"}

    # Half of the requests to each worker, each on a fresh connection.
    for pid in (first, second):
        with only(monitor, pid):
            assert [http_get(f"{monitor.url}/health") for _ in range(N // 2)] == [200] * (N // 2)
    assert {pid: per_worker(folder, pid, REQUESTS, **health) for pid in (first, second)} == {
        first: N // 2,
        second: N // 2,
    }

    def check_scrape() -> None:
        samples = monitor.scrape()
        assert summed(samples["vigil_http_requests"], REQUESTS, **health) == N
        assert (
            summed(
                samples["vigil_http_request_duration_seconds"],
                "vigil_http_request_duration_seconds_count",
                method="GET",
                endpoint="/health",
            )
            == N
        )

    # Each worker answers some scrapes: each sees the other's requests as well as its own.
    # And each refuses a scrape without the token, or with a token not signed by Vigil's key.
    for pid in (first, second):
        with only(monitor, pid):
            for _ in range(2):
                check_scrape()
            assert http_get(f"{monitor.url}/metrics") == 401
            assert http_get(f"{monitor.url}/metrics", bearer(foreign_key_token())) == 401
    for _ in range(4):
        check_scrape()

    assert monitor.processes.stop("monitor") == 0, monitor.processes.log("monitor")[-3000:]
    assert folder.name.startswith("vigil-prometheus-")
    assert not folder.exists(), f"{folder} outlived the master: {list(folder.iterdir())}"


def test_a_dead_workers_websocket_clients_leave_the_gauge(
    monitor: Monitor, wait_for: Callable[..., object]
) -> None:
    for _ in range(3):
        http_get(f"{monitor.url}/health")
    ws = websocket.create_connection(
        monitor.url.replace("http", "ws") + "/api/v1/ws",
        timeout=10,
        header=[f"Authorization: Bearer {monitor.token}"],
    )
    try:
        assert json.loads(ws.recv())["type"] == "hello"
        assert summed(monitor.scrape()["vigil_websocket_clients"]) == 1

        old = monitor.workers()
        # Killed outright, as the OOM killer would: no worker_exit, only the master's reaping.
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        wait_for(
            lambda: len(monitor.workers() - old) == 2,
            timeout=60,
            interval=0.1,
            message="two new workers",
        )
    finally:
        ws.close()

    samples = monitor.scrape()
    assert summed(samples["vigil_websocket_clients"]) == 0
    # Counters of dead workers are kept: what they counted still happened.
    assert summed(samples["vigil_http_requests"], REQUESTS, endpoint="/health") == 3


def test_a_master_that_never_serves_leaves_no_metrics_folder(tmp_path: Path) -> None:
    # `--check-config` reads gunicorn.conf.py and loads the app, then exits without serving;
    # a master that cannot bind its port exits the same way.
    processes = Processes(
        tmp_path, {"TMPDIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'vigil.db'}"}
    )
    checker = processes.start("check", [GUNICORN, "--check-config", "monitor_app:create_app()"])

    assert checker.wait(60) == 0, processes.log("check")[-3000:]
    assert list(tmp_path.glob("vigil-prometheus-*")) == []
