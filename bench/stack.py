"""A private Vigil for a benchmark: broker, Redis and the apps as separate processes.

Everything listens on free loopback ports and writes under one folder, so a benchmark never
meets `make run`'s system or the machine's own services. The processes are started the way
the Procfile starts them (gunicorn for data_app and monitor_app). The stack has token keys of
its own; `admin_token()` signs the benchmark in, `worker_token()` is what the worker sends the
analyser.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import tempfile
import uuid
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import sessionmaker

from devserver.ports import free_port
from devserver.postgres import PostgresCluster
from devserver.processes import ROOT, Processes, get_json, wait_until
from devserver.redis_credentials import RedisAccess
from devserver.redis_server import start_redis, wait_for_redis
from devserver.tansu import start_broker
from shared.auth.roles import Role, Scope
from shared.auth.tokens import (
    PRIVATE_KEY_NAME,
    PUBLIC_KEY_NAME,
    TokenClaims,
    TokenKind,
    TokenSigner,
    load_private_key,
    write_key_pair,
)
from shared.db import make_engine, migrate
from shared.kafka import wait_for_broker

# The benchmarks' account; found again in a cached database rather than added twice.
BENCH_ADMIN = "bench-admin@vigil.bench"
# Longer than any benchmark.
TOKEN_LIFETIME = timedelta(hours=12)


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
        self.redis_settings: dict[str, str] = {}
        self.database = self.folder / "vigil.db"
        keys = self.folder / "auth"
        write_key_pair(keys)
        self.settings = {
            "AUTH_PRIVATE_KEY_FILE": str(keys / PRIVATE_KEY_NAME),
            "AUTH_PUBLIC_KEY_FILE": str(keys / PUBLIC_KEY_NAME),
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
        # The broker's and Redis's processes, by name, for bench/cpu.py.
        self.service_pids: dict[str, int] = {}
        self._clusters: list[PostgresCluster] = []
        self._token: str | None = None
        self._worker_token: str | None = None

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- infrastructure --------------------------------------------------------------------
    def start_broker(self) -> str:
        port = free_port()
        self._services.append(start_broker(port, self.folder / "broker.log"))
        self.service_pids["broker"] = self._services[-1].pid
        self.bootstrap = f"127.0.0.1:{port}"
        wait_for_broker(self.bootstrap, deadline_s=30)
        self._set(KAFKA_BOOTSTRAP_SERVERS=self.bootstrap)
        return self.bootstrap

    def start_redis(self) -> str:
        """A private Redis with Vigil's users; the apps get a URL per role, as in `make run`.
        Returns the admin's URL, for the benchmark's own look at it."""
        port = free_port()
        access = RedisAccess.create(self.folder / "redis-users", port)
        self._services.append(start_redis(port, access.acl_file, self.folder / "redis.log"))
        self.service_pids["Redis"] = self._services[-1].pid
        self.redis_url = access.admin_url
        wait_for_redis(self.redis_url)
        self.redis_settings = access.settings()
        self._set(**self.redis_settings)
        return self.redis_url

    def start_postgres(self) -> str:
        """A private PostgreSQL with the tests' speed settings (fsync, synchronous_commit and
        full_page_writes off): what it measures is Vigil's work, not this machine's disk.
        Returns the URL of its `postgres` database, over the loopback without TLS."""
        cluster = PostgresCluster()
        self._clusters.append(cluster)
        cluster.start()
        return f"{cluster.url}?sslmode=disable"

    # -- Vigil's apps ----------------------------------------------------------------------
    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start_data(self, workers: int = 2, **env: str) -> str:
        """data_app as the Procfile serves it: each gunicorn worker one consumer of the group."""
        self.ports["data"] = free_port()
        self.processes.start_gunicorn(
            "data", "data_app", self.ports["data"], workers=workers, **env
        )
        return self._healthy("data")

    def start_monitor(
        self,
        workers: int = 2,
        threads: int | None = None,
        name: str = "monitor",
        *,
        cwd: Path = ROOT,
        **env: str,
    ) -> str:
        """monitor_app under gunicorn as the Procfile serves it (gevent's worker), or on
        `threads` threads a worker; another `name` for a second one (other `env`), and from
        another checkout at `cwd`."""
        self.ports[name] = free_port()
        if threads is None:
            self.processes.start_monitor(name, self.ports[name], workers, cwd=cwd, **env)
        else:
            self.processes.start_gunicorn(
                name,
                "monitor_app",
                self.ports[name],
                workers=workers,
                threads=threads,
                cwd=cwd,
                **env,
            )
        return self._healthy(name)

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
        token_file = self.folder / "ai-api-token"
        if not token_file.exists():
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as file:
                file.write(f"{self.worker_token()}\n")
        self._set(
            AI_API_URL=f"{self.url('analyser')}/api/v1/analyse",
            AI_API_TOKEN_FILE=str(token_file),
            METRICS_PORT="0",
        )
        self.processes.start_analyser(self.ports["analyser"], **env)
        self._healthy("analyser")
        self.processes.start_worker(**env)

    def admin_token(self) -> str:
        """An admin's access token for monitor_app (and, by signature, the other apps).

        The account is added to the apps' database, migrated first, unless it is there.
        """
        if self._token is None:
            from monitor_app.auth import services

            engine = make_engine(self.settings["DATABASE_URL"])
            try:
                migrate(engine)
                with sessionmaker(engine).begin() as session:
                    user = services.find_user(session, BENCH_ADMIN) or services.create_user(
                        session, BENCH_ADMIN, Role.ADMIN
                    )
                    user_id, role = user.id, user.role
            finally:
                engine.dispose()
            signer = TokenSigner(load_private_key(Path(self.settings["AUTH_PRIVATE_KEY_FILE"])))
            self._token, _claims = signer.access_token(user_id, role, TOKEN_LIFETIME)
        return self._token

    def worker_token(self) -> str:
        """An integration's API token holding analysis:write, signed with the stack's key: the
        analyser checks it by signature and the (empty) revocation sets, as for the worker."""
        if self._worker_token is None:
            signer = TokenSigner(load_private_key(Path(self.settings["AUTH_PRIVATE_KEY_FILE"])))
            claims = TokenClaims(
                token_id=uuid.uuid4(),
                user_id=uuid.uuid4(),
                role=Role.INTEGRATION.value,
                kind=TokenKind.API,
                scopes=frozenset({Scope.ANALYSIS_WRITE.value}),
            )
            self._worker_token = signer.sign(claims)
        return self._worker_token

    def key_settings(self) -> dict[str, Path]:
        """The key files, as the config of an app the benchmark creates in its own process."""
        return {
            name: Path(value) for name, value in self.settings.items() if name.startswith("AUTH_")
        }

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
        for cluster in self._clusters:
            cluster.stop()
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
