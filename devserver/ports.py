"""Free loopback ports, and telling whether a configured address is one of ours to serve."""

from __future__ import annotations

import os
import socket

LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago.

    In a test run split over pytest-xdist workers, each worker (and each process it starts) is
    handed ports of its own share only, so a port that one worker's server holds or has just
    let go of, as a restarted broker does, is never handed to another worker's server.
    """
    share, shares = _port_share()
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        # Linux hands out odd ports to bind() and keeps even ones for connect(): halve first.
        if (port // 2) % shares == share:
            return port


def _port_share() -> tuple[int, int]:
    """(this worker's number, the number of workers): (0, 1) outside an xdist run."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    shares = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not (worker.startswith("gw") and worker[2:].isdigit() and shares.isdigit()):
        return 0, 1
    return int(worker[2:]) % max(int(shares), 1), max(int(shares), 1)


def loopback_port(address: str) -> int | None:
    """The port of `address` ("host:port") when it is a single loopback address, else None."""
    if "," in address:
        return None
    host, _, port = address.rpartition(":")
    if host not in LOOPBACK_HOSTS or not port.isdigit():
        return None
    return int(port)
