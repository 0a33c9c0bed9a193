"""Starting Vigil's processes the way the Procfile does, for the tests and the benchmarks."""

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

from devserver.ports import free_port
from devserver.redis_credentials import RedisAccess
from devserver.redis_server import start_redis, wait_for_redis
from devserver.server import Server
from devserver.tansu import start_broker
from shared.kafka import wait_for_broker
from shared.serve import GEVENT_WORKER_CLASS

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GUNICORN = str(BIN / "gunicorn")
CELERY = str(BIN / "celery")
# The Procfile's monitor_app: connections each gevent worker holds (HTTP and WebSocket).
MONITOR_CONNECTIONS = 2000


def gunicorn_layout(threads: int, worker_connections: int | None = None) -> list[str]:
    """gunicorn's options for a worker of `threads` threads, or, with `worker_connections`,
    for gevent's worker (monitor_app's in the Procfile)."""
    if worker_connections is None:
        return ["--threads", str(threads)]
    return [
        *("--worker-class", GEVENT_WORKER_CLASS),
        *("--worker-connections", str(worker_connections)),
    ]


def get_json(url: str, method: str = "GET", body: object = None, token: str | None = None):
    """(status, JSON body) of a request, with a bearer `token` if given; (None, None) when
    nothing answers."""
    status, _headers, answer = request_json(url, method, body, token)
    return status, answer


def wait_until(
    condition: Callable[[], object],
    timeout: float = 20.0,
    interval: float = 0.05,
    message: str = "condition",
) -> object:
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

    def start(
        self, name: str, command: list[str], *, cwd: Path = ROOT, **env: str
    ) -> subprocess.Popen:
        # A session of its own: `kill` then reaches the processes it starts (gunicorn workers).
        with (self.log_dir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(  # noqa: S603
                command,
                cwd=cwd,
                env={**self.env, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running[name] = process
        return process

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start_worker(self, name: str = "worker", **env: str) -> subprocess.Popen:
        return self.start(
            name,
            [
                CELERY,
                "--quiet",
                "-A",
                "worker_app.celery_app",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                "4",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
                "--hostname",
                f"{name}@%h",
            ],
            **env,
        )

    def start_analyser(self, port: int, **env: str) -> subprocess.Popen:
        return self.start(
            "analyser", [sys.executable, "-m", "analyser_app", "--port", str(port)], **env
        )

    def start_gunicorn(
        self,
        name: str,
        app: str,
        port: int,
        workers: int = 1,
        threads: int = 4,
        worker_connections: int | None = None,
        *,
        cwd: Path = ROOT,
        **env: str,
    ) -> subprocess.Popen:
        """`app` ("monitor_app", "data_app") served as the Procfile serves it: on `threads`
        threads a worker, or with `worker_connections`, on gevent's worker (monitor_app's);
        from the checkout at `cwd`, this one unless told."""
        return self.start(
            name,
            [
                GUNICORN,
                f"{app}:create_app()",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                *gunicorn_layout(threads, worker_connections),
            ],
            cwd=cwd,
            **env,
        )

    def start_monitor(
        self, name: str, port: int, workers: int = 2, *, cwd: Path = ROOT, **env: str
    ) -> subprocess.Popen:
        """monitor_app as the Procfile serves it: gevent workers of MONITOR_CONNECTIONS."""
        return self.start_gunicorn(
            name,
            "monitor_app",
            port,
            workers,
            worker_connections=MONITOR_CONNECTIONS,
            cwd=cwd,
            **env,
        )

    def start_simulator(self, name: str, port: int, *options: str, **env: str) -> subprocess.Popen:
        """patient_app serving on `port`, with its command-line `options`."""
        command = [sys.executable, "-m", "patient_app", "--port", str(port), *options]
        return self.start(name, command, **env)

    def start_patient(
        self, name: str, port: int, patient_name: str, scenario: str = "normal", **env: str
    ) -> subprocess.Popen:
        return self.start_simulator(
            name, port, "--name", patient_name, "--scenario", scenario, **env
        )

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

    def kill(self, name: str, timeout: float = 10.0) -> None:
        """SIGKILL the process `name` and every process it started, as a power cut or the OOM
        killer would: no handler, no clean-up. Returns once none of them runs any more."""
        process = self.running[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)
        wait_until(
            lambda: not live_group_members(process.pid),
            timeout,
            message=f"every process of {name} to die",
        )

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


def live_group_members(group: int) -> list[int]:
    """Pids of the processes of process group `group` that still run (zombies excluded:
    orphans may never be reaped where the init process does not reap them)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[2]) == group and fields[0] not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


class RestartableService(Server):
    """A private server on a fixed port, which a test may kill and start again.

    Never a shared one (the session's broker or Redis, the machine's): killing those would
    break other tests. Subclasses say how to start it and how to tell it answers.
    """

    def __init__(self, log_file: Path) -> None:
        self.port = free_port()
        self.log_file = log_file
        self.processes: list[subprocess.Popen] = []

    def launch(self) -> subprocess.Popen:
        raise NotImplementedError

    def wait_until_answering(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        process = self.launch()
        self.processes.append(process)
        self.wait_until_answering()
        # Another process may have taken the port meanwhile: that one answered, not ours.
        if process.poll() is not None:
            raise RuntimeError(
                f"{process.args[0]} exited with {process.returncode}; see {self.log_file}"
            )

    def kill(self) -> None:
        """Die without a clean shutdown, as a crashed or OOM-killed server does."""
        process = self.processes[-1]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                process.wait(10)


class RestartableBroker(RestartableService):
    """A private tansu; it keeps everything in memory, so it comes back empty."""

    def __init__(self, log_file: Path) -> None:
        super().__init__(log_file)
        self.bootstrap = f"127.0.0.1:{self.port}"

    def launch(self) -> subprocess.Popen:
        return start_broker(self.port, self.log_file)

    def wait_until_answering(self) -> None:
        wait_for_broker(self.bootstrap, deadline_s=30)


def request_json(
    url: str, method: str = "GET", body: object = None, token: str | None = None
) -> tuple[int | None, Mapping[str, str], object]:
    """(status, headers, JSON body) of a request; (None, {}, None) when nothing answers."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(  # noqa: S310
        url, data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None, {}, None


def wait_for_log(
    processes: Processes, name: str, text: str, timeout: float = 30.0, after: int = 0
) -> int:
    """Wait until the log of `name` shows `text` past offset `after`; the offset just past it,
    to look for what must come later. Fails at once, with the end of the log, if the process
    exits meanwhile."""

    def found() -> int | None:
        processes.check_running(name)
        at = processes.log(name).find(text, after)
        return None if at < 0 else at + len(text)

    return wait_until(found, timeout, interval=0.1, message=f"{text!r} in the log of {name}")


class RestartableRedis(RestartableService):
    """A private redis-server; it keeps nothing on disk, so it comes back empty, as the
    embedded one does."""

    def __init__(self, log_file: Path) -> None:
        super().__init__(log_file)
        self.access = RedisAccess.create(log_file.parent / "redis-users", self.port)
        self.url = self.access.url

    def settings(self) -> dict[str, str]:
        """The apps' Redis settings: every role with its own user."""
        return self.access.settings()

    def launch(self) -> subprocess.Popen:
        return start_redis(self.port, self.access.acl_file, self.log_file)

    def wait_until_answering(self) -> None:
        wait_for_redis(self.access.admin_url)
