"""A crowd of dashboards for the end-to-end benchmark: many live streams in one process, each
subscribed to a few beds, timing the samples they are sent.

    python -m bench.crowd WS_URL --clients 1000 --beds 10 --timed-one-in 10 < setup.json

reads {"token": …, "patients": [uuid, …]} from stdin, opens the streams (client i shows
`beds` patients from i * beds on, round the ward), prints `ready <open>` and waits for a line
`start` on stdin; records until `stop`, then prints one JSON line: the latencies of the timed
clients' samples (now − the sample's timestamp), how many messages all clients read and how
many streams the server closed. It runs on gevent, patched before anything else is imported:
a thousand browsers on a thousand desks cost the server what they cost here, while this
process takes a fraction of a core for all of them.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import select  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import gevent  # noqa: E402
import websocket  # noqa: E402
from gevent.pool import Pool  # noqa: E402

from bench.stack import epoch  # noqa: E402
from bench.streams import open_stream  # noqa: E402

# Handshakes at once: each signs in and records its patients in the audit trail.
OPENING = 20


@dataclass
class Crowd:
    recording: bool = False
    latencies: list[float] = field(default_factory=list)
    messages: int = 0
    closed: int = 0


def _open(url: str, token: str) -> websocket.WebSocket | None:
    try:
        ws = open_stream(url, token, timeout=60, suppress_origin=True)
    except (OSError, websocket.WebSocketException) as refusal:
        print(f"refused: {refusal!r}", file=sys.stderr, flush=True)
        return None
    ws.settimeout(None)
    return ws


def _read(crowd: Crowd, ws: websocket.WebSocket, timed: bool) -> None:
    """Read every message (a client that stops reading is dropped); time the samples of a
    timed client's."""
    try:
        while True:
            text = ws.recv()
            now = time.time()
            crowd.messages += 1
            # A turn for the others: a socket with data waiting answers recv() at once, so a
            # busy stream would otherwise keep the loop (and the parent's "stop") waiting.
            gevent.sleep(0)
            if not (timed and crowd.recording):
                continue
            event = json.loads(text)
            if event.get("type") == "vitals":
                crowd.latencies.extend(now - epoch(s["timestamp"]) for s in event["samples"])
    except (OSError, websocket.WebSocketException):
        crowd.closed += 1


def _next_line() -> str:
    """The parent's next line, waited for on gevent's loop: a plain read of stdin would block
    the whole process, and every stream's reader with it."""
    select.select([sys.stdin], [], [])
    return sys.stdin.readline().strip()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.crowd")
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--beds", type=int, default=10)
    parser.add_argument("--timed-one-in", type=int, default=10)
    options = parser.parse_args()
    setup = json.loads(sys.stdin.readline())
    patients = setup["patients"]

    def stream_url(client: int) -> str:
        beds = [patients[(client * options.beds + n) % len(patients)] for n in range(options.beds)]
        return f"{options.url}?types=vitals&patients={','.join(beds)}"

    pool = Pool(OPENING)
    streams = pool.map(
        lambda client: _open(stream_url(client), setup["token"]), range(options.clients)
    )
    crowd = Crowd()
    readers = [
        gevent.spawn(_read, crowd, ws, client % options.timed_one_in == 0)
        for client, ws in enumerate(streams)
        if ws is not None
    ]
    print(f"ready {len(readers)}", flush=True)
    while (line := _next_line()) not in ("stop", ""):
        crowd.recording = crowd.recording or line == "start"
    crowd.recording = False
    closed = crowd.closed
    for ws in streams:
        if ws is not None:
            # The close frame sent, the socket shut at once: waiting for each server's close
            # reply behind its queued vitals (3 s each by default) took minutes for 1,000.
            ws.close(timeout=0)
    gevent.joinall(readers, timeout=10)
    print(
        json.dumps(
            {
                "opened": len(readers),
                "messages": crowd.messages,
                "closed": closed,
                "latencies": crowd.latencies,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
