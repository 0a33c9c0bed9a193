"""Slow and hostile clients against monitor_app served as the Procfile serves it (gunicorn
from the project root, gunicorn.conf.py, two workers of sixteen threads): the station keeps
answering while they hold their connections open.

One server for the module; each test leaves it as it found it (its sockets closed).
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devserver.ports import free_port
from devserver.processes import Processes, wait_until
from shared.auth.roles import Role
from tests.auth import Account, account_in

pytestmark = pytest.mark.integration

WORKERS = 2
THREADS = 16  # the Procfile's
# More than the two workers' threads together.
ATTACKERS = 40
# A station's probe, or a clinician's page, must not wait longer than this.
ANSWER_WITHIN = 1.0


@dataclass
class Station:
    processes: Processes
    port: int
    accounts: dict[Role, list[Account]]

    @property
    def master(self):
        return self.processes.running["monitor"]

    def workers(self) -> set[int]:
        pid = self.master.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return {int(child) for child in children}


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Station]:
    """monitor_app under gunicorn as the Procfile starts it, with accounts to sign in as."""
    folder = tmp_path_factory.mktemp("slow-clients")
    database_url = f"sqlite:///{folder / 'vigil.db'}"
    accounts = {
        Role.CLINICIAN: [account_in(database_url, Role.CLINICIAN) for _ in range(6)],
        Role.VIEWER: [account_in(database_url, Role.VIEWER) for _ in range(6)],
    }
    port = free_port()
    processes = Processes(
        folder,
        {
            "REDIS_URL": redis_url,
            "REDIS_NAMESPACE": f"test-slow-{port}",
            "DATABASE_URL": database_url,
            "TMPDIR": str(folder),
        },
    )
    processes.start_gunicorn("monitor", "monitor_app", port, workers=WORKERS, threads=THREADS)
    station = Station(processes, port, accounts)

    def ready() -> bool:
        processes.check_running("monitor")
        return (
            processes.log("monitor").count('"database schema is up to date"') == WORKERS
            and len(station.workers()) == WORKERS
        )

    try:
        wait_until(ready, timeout=60, interval=0.1, message="both workers serving")
        yield station
    finally:
        processes.stop_all()


def timed_get(
    port: int, path: str = "/health", token: str | None = None, body: bytes | None = None
) -> tuple[int, float]:
    """(status, seconds) of a GET (a POST with `body`) on a fresh connection that must answer
    within ANSWER_WITHIN; fails if it does not."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=ANSWER_WITHIN)
    started = time.monotonic()
    try:
        connection.request("GET" if body is None else "POST", path, body, headers)
        response = connection.getresponse()
        response.read()
    except TimeoutError:
        pytest.fail(f"GET {path} had no answer within {ANSWER_WITHIN}s")
    finally:
        connection.close()
    return response.status, time.monotonic() - started


def keeps_answering(port: int, seconds: float = 5.0, token: str | None = None) -> float:
    """GET /health (and, with a token, the patient list) again and again for `seconds`; each
    must answer within ANSWER_WITHIN. The slowest answer."""
    slowest = 0.0
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        status, took = timed_get(port)
        assert status == 200
        slowest = max(slowest, took)
        if token is not None:
            status, took = timed_get(port, "/api/v1/patients", token)
            assert status == 200
            slowest = max(slowest, took)
    return slowest


# A request's start, and what follows it every second, never ending it.
TRICKLES = {
    # Slowloris: one more header line, never the blank line that ends the head.
    "head": (b"GET /health HTTP/1.1\r\nHost: x\r\n", b"X-Line: still coming\r\n"),
    # A body announced but sent a byte at a time (the sign-in takes one unauthenticated).
    "body": (
        b"POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 4000\r\n\r\n{",
        b" ",
    ),
}


class Slowloris:
    """Sockets that start a request and send a little more of it every second, never all of
    it: each would hold a server thread for as long as it likes."""

    def __init__(self, port: int, count: int, trickle: str = "head") -> None:
        self.start, self.more = TRICKLES[trickle]
        self.sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        for sock in self.sockets:
            sock.sendall(self.start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, name="slowloris", daemon=True)
        self._thread.start()

    def _trickle(self) -> None:
        while not self._stop.wait(1.0):
            for sock in self.sockets:
                try:
                    sock.sendall(self.more)
                except OSError:
                    pass  # closed by the server: what a server may do

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self.sockets:
            sock.close()


@pytest.mark.parametrize("trickle", sorted(TRICKLES))
def test_slow_requests_do_not_stop_health_answering(station: Station, trickle: str) -> None:
    attack = Slowloris(station.port, ATTACKERS, trickle)
    try:
        slowest = keeps_answering(station.port, seconds=5.0)
        # A request with a body, sent at once, is read and answered (wrong password: 401).
        sign_in = b'{"username": "nobody@vigil.test", "password": "not this one"}'
        assert timed_get(station.port, "/api/v1/auth/token", body=sign_in)[0] == 401
    finally:
        attack.close()
    print(f"slowest /health under {ATTACKERS} sockets trickling their {trickle}: {slowest:.3f}s")
