"""A private Vigil for a benchmark: broker, Redis and the apps as separate processes.

Everything listens on free loopback ports and writes under one folder, so a benchmark never
meets `make run`'s system or the machine's own services. The processes are started the way
the Procfile starts them (gunicorn for data_app and monitor_app).
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import tempfile
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devserver.ports import free_port
from devserver.processes import Processes, get_json, wait_until
from devserver.redis_server import start_redis, wait_for_redis
from devserver.tansu import start_broker
from shared.kafka import wait_for_broker


def epoch(timestamp: str) -> float:
    """Seconds since the epoch of an ISO time the apps wrote; the database keeps UTC without
    a zone, the API and live stream say +00:00."""
    moment = datetime.fromisoformat(timestamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class Stack:
    """Start parts with `start_*`; `close()` (or leaving the `with`) stops them all."""

    def __init__(self, name: str, **settings: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix=f"vigil-bench-{name}-"))
        self.ports: dict[str, int] = {}
        self.bootstrap = ""
        self.redis_url = ""
        self.database = self.folder / "vigil.db"
        self.settings = {
            "DATABASE_URL": f"sqlite:///{self.database}",
            "KAFKA_TOPIC": "vitals",
            "KAFKA_DLQ_TOPIC": "vitals.dlq",
            "KAFKA_SESSION_TIMEOUT_MS": "2000",
            "LOG_LEVEL": "WARNING",
            "RATE_LIMIT_ENABLED": "false",
            **settings,
        }
        self.processes = Processes(self.folder, self.settings)
        self._services: list[Any] = []

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- infrastructure --------------------------------------------------------------------
    def start_broker(self) -> str:
        port = free_port()
        self._services.append(start_broker(port, self.folder / "broker.log"))
        self.bootstrap = f"127.0.0.1:{port}"
        wait_for_broker(self.bootstrap, deadline_s=30)
        self._set(KAFKA_BOOTSTRAP_SERVERS=self.bootstrap)
        return self.bootstrap

    def start_redis(self) -> str:
        port = free_port()
        self._services.append(start_redis(port, self.folder / "redis.log"))
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        wait_for_redis(self.redis_url)
        self._set(REDIS_URL=self.redis_url)
        return self.redis_url

    # -- Vigil's apps ----------------------------------------------------------------------
    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start_data(self, **env: str) -> str:
        self.ports["data"] = free_port()
        self.processes.start_gunicorn("data", "data_app", self.ports["data"], **env)
        return self._healthy("data")

    def start_monitor(self, workers: int = 2, threads: int = 16, **env: str) -> str:
        self.ports["monitor"] = free_port()
        self.processes.start_gunicorn(
            "monitor", "monitor_app", self.ports["monitor"], workers=workers, threads=threads, **env
        )
        return self._healthy("monitor")

    def start_patients(
        self, name: str, count: int, interval: float, scenario: str = "normal", **env: str
    ) -> str:
        """`count` simulated patients named "<name> 0001"… in one process."""
        self.ports[name] = free_port()
        self.processes.start_simulator(
            name,
            self.ports[name],
            *("--name", name, "--patients", str(count), "--interval", str(interval)),
            *("--scenario", scenario, "--seed", str(len(self.ports))),
            **env,
        )
        return self._healthy(name)

    def start_analysis(self, **env: str) -> None:
        """The reference analyser (its default 1–3 s per call) and a worker calling it."""
        self.ports["analyser"] = free_port()
        self._set(AI_API_URL=f"{self.url('analyser')}/api/v1/analyse", METRICS_PORT="0")
        self.processes.start_analyser(self.ports["analyser"], **env)
        self._healthy("analyser")
        self.processes.start_worker(**env)

    def read(self) -> sqlite3.Connection:
        """A read-only connection to the apps' database (close it when done)."""
        return sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)

    def count(self, table: str) -> int:
        """Rows in `table` of the apps' database; 0 until data_app has created it."""
        if not self.database.exists():
            return 0
        try:
            with closing(self.read()) as connection:
                return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
        except sqlite3.OperationalError:  # not migrated yet
            return 0

    def check_running(self) -> None:
        for name in self.processes.running:
            self.processes.check_running(name)

    def close(self) -> None:
        self.processes.stop_all()
        for service in self._services:
            if service.poll() is None:
                service.send_signal(signal.SIGTERM)
                service.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _set(self, **settings: str) -> None:
        self.settings.update(settings)
        self.processes.env.update(settings)

    def _healthy(self, name: str, timeout: float = 60.0) -> str:
        url = self.url(name)

        def answers() -> bool:
            self.processes.check_running(name)
            return get_json(f"{url}/health")[0] is not None

        wait_until(answers, timeout=timeout, interval=0.2, message=f"{name} to answer")
        return url
