"""A monitor app behind a real threaded server (a WebSocket needs a socket), and a client's
view of its live stream: the tests of `/api/v1/ws` share these."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import websocket
from flask import Flask
from werkzeug.serving import make_server

from shared.lifecycle import background_service

# How often a served stream re-checks its session or token.
CHECK_SECONDS = 0.1
# A stream must notice within a few checks; the rest is margin for a loaded machine.
CLOSE_DEADLINE = 10.0


@dataclass(frozen=True)
class Served:
    app: Flask
    port: int

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/ws"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serving(app: Flask, wait_for: Callable[..., object]) -> Iterator[Served]:
    """`app` behind a real server, its event hub relaying this test's Redis channel."""
    app.config["WS_SESSION_CHECK_SECONDS"] = CHECK_SECONDS
    hub = background_service(app, "event_hub")
    hub.start()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="test-server", daemon=True)
    thread.start()
    try:
        wait_for(lambda: hub.connected, timeout=10, message="the event hub to subscribe")
        yield Served(app, server.server_port)
    finally:
        hub.stop(timeout=5)
        server.shutdown()
        thread.join(10)
        server.server_close()


def connect(served: Served, query: str = "", **options) -> websocket.WebSocket:
    """A stream past its hello (websocket-client sends this site's Origin by default)."""
    ws = websocket.create_connection(served.ws_url + query, timeout=CLOSE_DEADLINE, **options)
    assert json.loads(ws.recv())["type"] == "hello"
    return ws


def closed_with(
    ws: websocket.WebSocket, timeout: float = CLOSE_DEADLINE, answer_pings: bool = True
) -> tuple[int, str]:
    """The close code and reason the server ends the stream with; events before it are
    skipped. Fails if the stream is still open after `timeout` seconds.

    `answer_pings=False` reads the frames as they come, answering none: a client the server
    dropped for silence would otherwise answer the pings still buffered, into a closed socket.
    """
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"the stream was still open after {timeout}s")
            ws.settimeout(remaining)
            try:
                if answer_pings:
                    opcode, frame = ws.recv_data_frame(True)
                else:
                    frame = ws.frame_buffer.recv_frame()
                    opcode = frame.opcode
            except websocket.WebSocketTimeoutException:
                raise AssertionError(f"the stream was still open after {timeout}s") from None
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                data = frame.data
                return int.from_bytes(data[:2], "big"), data[2:].decode()
    finally:
        ws.close()
        # Having answered the server's close, the client no longer closes its socket itself.
        ws.shutdown()


def receive_event(ws: websocket.WebSocket, event_type: str) -> dict:
    """The next event of `event_type` (the socket's timeout bounds the wait)."""
    while True:
        event = json.loads(ws.recv())
        if event["type"] == event_type:
            return event
