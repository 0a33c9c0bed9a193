"""Free loopback ports, and telling whether a configured address is one of ours to serve."""

from __future__ import annotations

import socket

LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def loopback_port(address: str) -> int | None:
    """The port of `address` ("host:port") when it is a single loopback address, else None."""
    if "," in address:
        return None
    host, _, port = address.rpartition(":")
    if host not in LOOPBACK_HOSTS or not port.isdigit():
        return None
    return int(port)
