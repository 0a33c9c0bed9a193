"""Slow clients against monitor_app when gunicorn serves TLS itself (README, Deployment):
the handshake, and the request after it, arrive slowly; the station keeps answering.

One server per layout for the module, over TLS: two gevent workers as the Procfile's, and two
workers of sixteen threads.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import websocket

from devserver.ports import free_port
from devserver.processes import (
    GUNICORN,
    MONITOR_CONNECTIONS,
    Processes,
    gunicorn_layout,
    wait_until,
)
from devserver.redis_credentials import RedisAccess
from devserver.tls import make_server_certificate
from shared.auth.roles import Role
from tests.auth import account_in
from tests.slow_clients import ATTACKERS, Slowloris, keeps_answering

pytestmark = pytest.mark.integration

WORKERS = 2
THREADS = 16
LAYOUTS = {
    "gevent": gunicorn_layout(THREADS, MONITOR_CONNECTIONS),
    "threaded": gunicorn_layout(THREADS),
}
# A ClientHello's record header, announcing 512 bytes, then a byte of it every second.
SLOW_HELLO = (b"\x16\x03\x01\x02\x00\x01", b"\x00")


@dataclass
class TlsStation:
    port: int
    client: ssl.SSLContext
    clinician_token: str

    def tcp(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port))

    def tls(self) -> socket.socket:
        return self.client.wrap_socket(self.tcp(), server_hostname="127.0.0.1")


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def station(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_users: RedisAccess,
) -> Iterator[TlsStation]:
    folder = tmp_path_factory.mktemp(f"slow-tls-{request.param}")
    tls = make_server_certificate(folder / "tls", hosts=("127.0.0.1",))
    port = free_port()
    database_url = f"sqlite:///{folder / 'vigil.db'}"
    clinician = account_in(database_url, Role.CLINICIAN)
    processes = Processes(
        folder,
        {
            **redis_users.settings(),
            "REDIS_NAMESPACE": f"test-slow-tls-{port}",
            "DATABASE_URL": database_url,
            "TMPDIR": str(folder),
        },
    )
    processes.start(
        "monitor",
        [
            GUNICORN,
            "monitor_app:create_app()",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(WORKERS),
            *LAYOUTS[request.param],
            "--certfile",
            str(tls.cert_file),
            "--keyfile",
            str(tls.key_file),
        ],
    )
    client = ssl.create_default_context(cafile=str(tls.ca_file))

    def ready() -> bool:
        processes.check_running("monitor")
        return processes.log("monitor").count('"database schema is up to date"') == WORKERS

    try:
        wait_until(ready, timeout=60, interval=0.1, message="both workers serving")
        yield TlsStation(port, client, clinician.token)
    finally:
        processes.stop_all()


@pytest.mark.parametrize(
    ("attack", "trickle"),
    [("slow-hello", SLOW_HELLO), ("slow-head", "head")],
)
def test_slow_tls_clients_do_not_stop_health_answering(
    station: TlsStation, attack: str, trickle: str | tuple[bytes, bytes]
) -> None:
    connect: Callable[[], socket.socket] = station.tcp if attack == "slow-hello" else station.tls
    clients = Slowloris(connect, ATTACKERS, trickle)
    try:
        slowest = keeps_answering(station.port, seconds=5.0, tls=station.client)
    finally:
        clients.close()
    print(f"slowest /health over TLS beside {ATTACKERS} clients ({attack}): {slowest:.3f}s")


def test_the_live_stream_works_over_tls(station: TlsStation) -> None:
    """The worker completes the handshake itself; the stream gets the TLS socket."""
    ws = websocket.create_connection(
        f"wss://127.0.0.1:{station.port}/api/v1/ws",
        timeout=10,
        header=[f"Authorization: Bearer {station.clinician_token}"],
        sslopt={"context": station.client},
        suppress_origin=True,
    )
    try:
        assert json.loads(ws.recv())["type"] == "hello"
    finally:
        ws.close()
