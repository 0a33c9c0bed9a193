"""Process helpers only the tests use; the general ones are in `devserver.processes`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import websocket

from devserver.processes import Processes


def data_app_processes(folder: Path, bootstrap: str, **settings: str) -> Processes:
    """Processes with the settings of data_apps storing into `folder`/vigil.db, in a consumer
    group of their own, on 3 partitions with a quick group join."""
    temp = folder / "tmp"
    temp.mkdir()
    return Processes(
        folder,
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DATABASE_URL": f"sqlite:///{folder / 'vigil.db'}",
            "KAFKA_GROUP_ID": f"data-{uuid.uuid4().hex}",
            "KAFKA_SESSION_TIMEOUT_MS": "2000",
            "KAFKA_TOPIC_PARTITIONS": "3",
            # A killed gunicorn leaves its metrics folder behind: keep it in the test's folder.
            "TMPDIR": str(temp),
            **settings,
        },
    )


def receive_until(ws: websocket.WebSocket, done: Callable[[dict], bool]) -> list[dict]:
    """Events from `ws` up to and including the first for which `done` is true; the socket's
    timeout bounds the wait."""
    events = []
    while True:
        event = json.loads(ws.recv())
        events.append(event)
        if done(event):
            return events
