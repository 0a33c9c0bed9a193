"""Slow clients against monitor_app when gunicorn serves TLS itself (README, Deployment):
the handshake, and the request after it, arrive slowly; the station keeps answering.

One server for the module: the Procfile's two workers of sixteen threads, over TLS.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import websocket
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devserver.ports import free_port
from devserver.processes import GUNICORN, Processes, wait_until
from shared.auth.roles import Role
from tests.auth import account_in
from tests.slow_clients import ATTACKERS, Slowloris, keeps_answering

pytestmark = pytest.mark.integration

WORKERS = 2
THREADS = 16
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


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert, key_file = folder / "monitor.pem", folder / "monitor-key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key_file


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[TlsStation]:
    folder = tmp_path_factory.mktemp("slow-tls")
    cert, key = self_signed(folder)
    port = free_port()
    database_url = f"sqlite:///{folder / 'vigil.db'}"
    clinician = account_in(database_url, Role.CLINICIAN)
    processes = Processes(
        folder,
        {
            "REDIS_URL": redis_url,
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
            "--threads",
            str(THREADS),
            "--certfile",
            str(cert),
            "--keyfile",
            str(key),
        ],
    )
    client = ssl.create_default_context(cafile=str(cert))

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
    """The worker completes the handshake itself; the stream's thread gets the TLS socket."""
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
