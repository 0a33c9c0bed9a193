"""Slow and hostile clients, for the tests that attack a served app with them."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable

import pytest

# A station's probe, or a clinician's page, must not wait longer than this.
ANSWER_WITHIN = 1.0
# A sign-in verifies an Argon2 hash (a dummy one for an unknown name), which takes a few
# tenths of a second alone and more on two cores shared with the rest of the suite; a server
# stuck behind the slow sockets would not answer at all.
SIGN_IN_WITHIN = 5.0
# More than the threads of the Procfile's two workers together.
ATTACKERS = 40


def _connection(
    port: int, tls: ssl.SSLContext | None, within: float = ANSWER_WITHIN
) -> http.client.HTTPConnection:
    if tls is None:
        return http.client.HTTPConnection("127.0.0.1", port, timeout=within)
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=within, context=tls)


def timed_get(
    port: int,
    path: str = "/health",
    token: str | None = None,
    body: bytes | None = None,
    tls: ssl.SSLContext | None = None,
    within: float = ANSWER_WITHIN,
) -> tuple[int, float]:
    """(status, seconds) of a GET (a POST with `body`) on a fresh connection that must answer
    within `within` seconds; fails if it does not."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    connection = _connection(port, tls, within)
    started = time.monotonic()
    try:
        connection.request("GET" if body is None else "POST", path, body, headers)
        response = connection.getresponse()
        response.read()
    except TimeoutError:
        pytest.fail(f"{'GET' if body is None else 'POST'} {path} had no answer within {within}s")
    finally:
        connection.close()
    return response.status, time.monotonic() - started


def keeps_answering(
    port: int, seconds: float = 5.0, token: str | None = None, tls: ssl.SSLContext | None = None
) -> float:
    """GET /health (and, with a token, the patient list) again and again for `seconds`; each
    must answer within ANSWER_WITHIN. The slowest answer."""
    slowest = 0.0
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        status, took = timed_get(port, tls=tls)
        assert status == 200
        slowest = max(slowest, took)
        if token is not None:
            status, took = timed_get(port, "/api/v1/patients", token, tls=tls)
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

    def __init__(
        self,
        connect: Callable[[], socket.socket],
        count: int,
        trickle: str | tuple[bytes, bytes] = "head",
    ) -> None:
        self.start, self.more = TRICKLES[trickle] if isinstance(trickle, str) else trickle
        self.sockets = [connect() for _ in range(count)]
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


def answers(port: int, tls: ssl.SSLContext | None = None) -> bool:
    """Whether GET /health answers 200 within ANSWER_WITHIN."""
    connection = _connection(port, tls)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()
