"""Starting Vigil's processes the way the Procfile does, for the integration tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GUNICORN = str(BIN / "gunicorn")
CELERY = str(BIN / "celery")


def get_json(url: str, method: str = "GET", body: object = None):
    """(status, JSON body) of a request; (None, None) when nothing answers."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,  # noqa: S310
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None, None


def wait_until(condition: Callable[[], object], timeout: float = 20.0, interval: float = 0.05,
               message: str = "condition") -> object:
    """Poll `condition` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class Processes:
    """Named child processes with their logs under one folder; all stopped at the end."""

    def __init__(self, log_dir: Path, env: Mapping[str, str]) -> None:
        self.log_dir = log_dir
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str], **env: str) -> subprocess.Popen:
        with (self.log_dir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(command, cwd=ROOT, env={**self.env, **env},  # noqa: S603
                                       stdout=log, stderr=subprocess.STDOUT)
        self.running[name] = process
        return process

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start_worker(self, name: str = "worker", **env: str) -> subprocess.Popen:
        return self.start(name, [CELERY, "--quiet", "-A", "worker_app.celery_app", "worker",
                                 "--pool", "threads", "--concurrency", "4",
                                 "--without-gossip", "--without-mingle", "--without-heartbeat",
                                 "--loglevel", "INFO",
                                 "--hostname", f"{name}@%h"], **env)

    def start_analyser(self, port: int, **env: str) -> subprocess.Popen:
        return self.start("analyser", [sys.executable, "-m", "analyser_app", "--port", str(port)],
                          **env)

    def start_gunicorn(self, name: str, app: str, port: int, workers: int = 1, threads: int = 4,
                       **env: str) -> subprocess.Popen:
        """`app` ("monitor_app", "data_app") served as the Procfile serves it."""
        return self.start(name, [GUNICORN, f"{app}:create_app()", "--bind", f"127.0.0.1:{port}",
                                 "--workers", str(workers), "--threads", str(threads)], **env)

    def start_patient(self, name: str, port: int, patient_name: str, scenario: str = "normal",
                      **env: str) -> subprocess.Popen:
        return self.start(name, [sys.executable, "-m", "patient_app", "--name", patient_name,
                                 "--port", str(port), "--scenario", scenario], **env)

    def check_running(self, name: str) -> None:
        """Fail with the end of its log if the process `name` has exited."""
        code = self.running[name].poll()
        assert code is None, f"{name} exited with {code}:\n{self.log(name)[-3000:]}"

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal one process and wait for it to exit; its exit code."""
        process = self.running[name]
        if process.poll() is None:
            process.send_signal(sig)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(5)

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
