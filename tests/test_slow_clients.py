"""Slow and hostile clients against monitor_app served under gunicorn from the project root
(gunicorn.conf.py, two workers): as the Procfile serves it, on gevent's worker, and on the
threaded worker (sixteen threads) that `python -m monitor_app` and the other apps use. The
station keeps answering while they hold their connections open.

One server per layout for the module; each test leaves it as it found it (its sockets
closed).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import websocket

from devserver.ports import free_port
from devserver.processes import Processes, wait_until
from devserver.redis_credentials import RedisAccess
from shared.auth.roles import Role
from shared.events import Events
from tests.auth import Account, account_in
from tests.helpers import open_stream
from tests.slow_clients import (
    ANSWER_WITHIN,
    ATTACKERS,
    SIGN_IN_WITHIN,
    TRICKLES,
    Slowloris,
    answers,
    keeps_answering,
    timed_get,
)

pytestmark = pytest.mark.integration

WORKERS = 2
THREADS = 16  # the threaded layout's
# Misconfigured: as many WebSocket seats as the worker has threads.
WS_MAX_CLIENTS = THREADS
# What the seats are lowered to: half the threads, on each worker.
SEATS = WORKERS * THREADS // 2
GEVENT, THREADED = "gevent", "threaded"
# Streams the gevent layout is asked to hold: far more than the threaded layout's seats.
STREAMS = 200


@dataclass
class Station:
    processes: Processes
    port: int
    accounts: dict[Role, list[Account]]
    layout: str
    events: Events

    @property
    def master(self):
        return self.processes.running["monitor"]

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/ws"

    def workers(self) -> set[int]:
        pid = self.master.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return {int(child) for child in children}


@pytest.fixture(scope="module", params=[GEVENT, THREADED])
def station(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_users: RedisAccess,
) -> Iterator[Station]:
    """monitor_app under gunicorn in one of its layouts, with accounts to sign in as."""
    layout = request.param
    folder = tmp_path_factory.mktemp(f"slow-clients-{layout}")
    database_url = f"sqlite:///{folder / 'vigil.db'}"
    accounts = {Role.CLINICIAN: [account_in(database_url, Role.CLINICIAN) for _ in range(8)]}
    port = free_port()
    namespace = f"test-slow-{port}"
    settings = redis_users.settings()
    processes = Processes(
        folder,
        {
            **settings,
            "REDIS_NAMESPACE": namespace,
            "DATABASE_URL": database_url,
            "TMPDIR": str(folder),
        },
    )
    if layout == GEVENT:
        processes.start_monitor("monitor", port, WORKERS, WS_MAX_CLIENTS_PER_USER=str(STREAMS))
    else:
        processes.start_gunicorn(
            "monitor",
            "monitor_app",
            port,
            workers=WORKERS,
            threads=THREADS,
            WS_MAX_CLIENTS=str(WS_MAX_CLIENTS),
        )
    station = Station(
        processes, port, accounts, layout, Events(settings["REDIS_EVENTS_URL"], namespace)
    )

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


@pytest.mark.parametrize("trickle", sorted(TRICKLES))
def test_slow_requests_do_not_stop_health_answering(station: Station, trickle: str) -> None:
    attack = Slowloris(
        lambda: socket.create_connection(("127.0.0.1", station.port)), ATTACKERS, trickle
    )
    try:
        slowest = keeps_answering(station.port, seconds=5.0)
        # A request with a body, sent at once, is read and answered (wrong password: 401).
        sign_in = b'{"username": "nobody@vigil.test", "password": "not this one"}'
        signed = timed_get(station.port, "/api/v1/auth/token", body=sign_in, within=SIGN_IN_WITHIN)
        assert signed[0] == 401
    finally:
        attack.close()
    print(f"slowest /health under {ATTACKERS} sockets trickling their {trickle}: {slowest:.3f}s")


def test_a_client_that_expects_100_continue_gets_it_before_sending_its_body(
    station: Station,
) -> None:
    """curl sends a body over 1 KiB only once told to (or after a second): the worker
    waiting for the body must say so itself."""
    body = b'{"username": "nobody@vigil.test", "password": "%s"}' % (b"x" * 2000)
    with socket.create_connection(("127.0.0.1", station.port), timeout=ANSWER_WITHIN) as sock:
        sock.sendall(
            b"POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        answer = b""
        # The head of the answer (a password that long is refused), after any further 100.
        while b"\r\n\r\n{" not in answer:
            more = sock.recv(65536)
            assert more, answer
            answer += more
    assert b"HTTP/1.1 422 " in answer, answer


# gunicorn's worker_connections: connections a worker holds before it stops accepting.
WORKER_CONNECTIONS = 1000


def test_a_flood_of_unfinished_requests_does_not_stop_health_answering(station: Station) -> None:
    """More connections than the workers may hold, each with a request begun: the workers
    make room for new clients by dropping those that have taken longest."""
    sockets = []
    try:
        for _ in range(WORKERS * WORKER_CONNECTIONS + 100):
            sock = socket.create_connection(("127.0.0.1", station.port))
            sock.sendall(b"GET /health HTTP/1.1\r\n")
            sockets.append(sock)
        # The workers accept, in turn, what the kernel queued before the probe: on a busy
        # machine that can take a moment. Then the probe must keep being answered; without
        # room made, none is until the first of these is dropped (REQUEST_HEAD_SECONDS).
        started = time.monotonic()
        wait_until(lambda: answers(station.port), timeout=4, interval=0.1, message="/health")
        absorbed = time.monotonic() - started
        slowest = keeps_answering(station.port, seconds=3.0)
    finally:
        for sock in sockets:
            sock.close()
    print(
        f"beside {len(sockets)} unfinished requests /health answered after {absorbed:.3f}s, "
        f"then within {slowest:.3f}s"
    )


# -- WebSocket ------------------------------------------------------------------------------
def opened(station: Station, account: Account, timeout: float = 10.0):
    """A stream of `account`'s past its hello, or how it was refused; or None if the
    handshake had no answer within `timeout`."""
    try:
        return open_stream(station.ws_url, account.token, timeout)
    except (TimeoutError, websocket.WebSocketTimeoutException):
        return None


def stream_for(station: Station, account: Account) -> websocket.WebSocket:
    """A stream of `account`'s, once a seat is free (closed streams free theirs within a
    second or so)."""

    def seated() -> websocket.WebSocket | None:
        stream = opened(station, account)
        return stream if isinstance(stream, websocket.WebSocket) else None

    return wait_until(seated, timeout=10, interval=0.2, message="a free seat")


@pytest.mark.parametrize("station", [THREADED], indirect=True)
def test_websocket_clients_never_take_every_thread(station: Station) -> None:
    """WS_MAX_CLIENTS as large as the threads: with every seat taken, HTTP still answers."""
    clinicians = station.accounts[Role.CLINICIAN]
    streams: list[websocket.WebSocket] = []
    refusals: list[tuple[int, str]] = []
    try:
        # Until the handshakes have no thread left to answer them, or, every seat taken, are
        # refused (then quickly) so many times in a row that every worker must be full. The
        # kernel need not share connections evenly: a full worker may refuse many in a row
        # while the other still has seats.
        for attempt in range(4 * WORKERS * WS_MAX_CLIENTS):
            stream = opened(station, clinicians[attempt % len(clinicians)], timeout=5.0)
            if stream is None:
                break
            if isinstance(stream, tuple):
                refusals.append(stream)
                if len(refusals) >= 16 and len(streams) >= SEATS:
                    break
            else:
                streams.append(stream)
                refusals.clear()
        print(f"{len(streams)} streams open")
        slowest = keeps_answering(station.port, seconds=3.0, token=clinicians[0].token)
        print(f"slowest answer with every seat taken: {slowest:.3f}s")
        assert len(streams) == SEATS
        assert set(refusals) == {(503, "too many clients on this worker; retry shortly")}
    finally:
        for stream in streams:
            stream.close()
    assert '"WebSocket seats lowered to half the worker\'s threads"' in station.processes.log(
        "monitor"
    )


def next_vitals(stream: websocket.WebSocket) -> dict:
    """The stream's next `vitals` event (others, such as `live`, are skipped)."""
    while True:
        event = json.loads(stream.recv())
        if event["type"] == "vitals":
            return event


@pytest.mark.parametrize("station", [GEVENT], indirect=True)
def test_gevent_workers_hold_hundreds_of_streams_and_keep_answering(station: Station) -> None:
    """As the Procfile serves it, a stream holds no thread: far more streams than the threaded
    layout's seats are held, each gets every event, and HTTP keeps answering beside them."""
    clinicians = station.accounts[Role.CLINICIAN]
    streams: list[websocket.WebSocket] = []
    try:
        for index in range(STREAMS):
            stream = opened(station, clinicians[index % len(clinicians)])
            assert isinstance(stream, websocket.WebSocket), stream
            streams.append(stream)
        slowest = keeps_answering(station.port, seconds=3.0, token=clinicians[0].token)
        assert station.events.publish("vitals", {"samples": [], "mark": "to all"})
        marks = {next_vitals(stream)["mark"] for stream in streams}
    finally:
        for stream in streams:
            stream.close()
    print(f"{len(streams)} streams open; slowest answer beside them: {slowest:.3f}s")
    assert marks == {"to all"}
    assert '"WebSocket seats lowered' not in station.processes.log("monitor")


# Events enough to overflow a stream's queue (1,000) and the socket buffers between.
FLOOD_EVENTS = 3000
FLOOD_PADDING = "x" * 16384


def test_a_stream_that_stops_reading_is_dropped_and_never_slows_the_others(
    station: Station,
) -> None:
    """A client that stops reading (a frozen browser tab, or an attacker holding the
    server's memory) loses its stream; the others get every event meanwhile."""
    stalled_clinician, reading_clinician = station.accounts[Role.CLINICIAN][2:4]
    stalled = stream_for(station, stalled_clinician)
    reader = stream_for(station, reading_clinician)
    try:
        for number in range(FLOOD_EVENTS):
            event = {"samples": [], "number": number, "padding": FLOOD_PADDING}
            assert station.events.publish("vitals", event)
            assert next_vitals(reader)["number"] == number
        wait_until(
            lambda: '"dropped a live stream that fell behind"' in station.processes.log("monitor"),
            timeout=10,
            message="the stalled stream dropped",
        )
    finally:
        stalled.shutdown()
        reader.close()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def close_code(sock: socket.socket, timeout: float) -> int | None:
    """The code of the close frame the server sends within `timeout` (frames before it are
    skipped); None if none comes. Read from the socket itself: the server resets a connection
    it closes with unread data, and websocket-client then reports only the reset."""
    sock.settimeout(timeout)
    data = b""

    def take(count: int) -> bytes:
        nonlocal data
        while len(data) < count:
            more = sock.recv(65536)
            if not more:
                raise EOFError
            data += more
        taken, data = data[:count], data[count:]
        return taken

    try:
        while True:
            opcode, length = take(2)
            length &= 0x7F
            if length >= 126:
                length = int.from_bytes(take(2 if length == 126 else 8), "big")
            payload = take(length)
            if opcode & 0x0F == websocket.ABNF.OPCODE_CLOSE:
                return int.from_bytes(payload[:2], "big")
    except (TimeoutError, EOFError, ConnectionResetError):
        return None


MESSAGE_MIB = 100


def test_a_huge_client_message_is_refused_without_growing_the_worker(station: Station) -> None:
    """The stream is the server's to send; a client sending it 100 MiB must not make the
    worker hold them (they were buffered whole, and the memory never given back)."""
    clinician, next_clinician = station.accounts[Role.CLINICIAN][:2]
    before = {pid: rss_mib(pid) for pid in station.workers()}
    ws = stream_for(station, clinician)
    # One binary frame, masked with a zero key so the payload goes as it is.
    ws.sock.sendall(b"\x82\xff" + (MESSAGE_MIB << 20).to_bytes(8, "big") + bytes(4))
    chunk = bytes(1 << 20)
    try:
        for _ in range(MESSAGE_MIB):
            ws.sock.sendall(chunk)
    except OSError:
        pass  # the server stopped reading: what it should do
    code = close_code(ws.sock, timeout=10.0)
    ws.shutdown()
    growth = max(rss_mib(pid) - rss for pid, rss in before.items())
    print(f"close code {code}; worker RSS grew by at most {growth:.0f} MiB")

    assert code == 1009
    assert growth < 50
    stream_for(station, next_clinician).close()
