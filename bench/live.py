"""Live streams one monitor_app instance holds: open WebSocket streams until refused, then
time one `vitals` event's fan-out to all of them.

Seat limits are lifted (WS_MAX_CLIENTS and the per-user limit set to what is asked for), so
what binds is the server: today each stream holds one of a gunicorn worker's threads, and
the seats never take more than half of them (monitor_app/live/seats.py).
"""

from __future__ import annotations

import json
import os
import select
import time
from pathlib import Path
from typing import Any

import websocket

from bench.report import Report, percentile
from bench.stack import Stack
from bench.streams import open_stream
from shared.events import Events

TARGET_STREAMS = 1000
NAMESPACE = "vigil-bench-live"
# Layouts: (label, workers, threads; None: gevent's worker). The Procfile's, then gthread
# workers as before: the threads Vigil once served with, and one worker with threads for all.
PROCFILE = ("Procfile: 2 gevent workers", 2, None)
THREADED = ("2 workers x 16 threads", 2, 16)
BIG_POOL = ("1 worker x 2100 threads", 1, 2100)


def _worker_pids(master: int) -> list[int]:
    return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# While opening a thousand streams (a minute on a busy machine), the first ones must answer
# the server's pings, or they are dropped as gone (WS_PING_SECONDS): every this many opened.
PONG_EVERY = 50


def _answer_pings(streams: list[websocket.WebSocket]) -> None:
    """Read what waits on each stream (a ping is answered as it is read)."""
    poller = select.poll()  # not select(): a thousand sockets pass its FD_SETSIZE
    by_fd = {ws.sock.fileno(): ws for ws in streams}
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    while ready := poller.poll(0):
        for fd, _event in ready:
            by_fd[fd].recv_data_frame(True)


def _open(url: str, token: str) -> websocket.WebSocket | str:
    """A stream past its hello, or why it was refused."""
    try:
        ws = open_stream(url, token, timeout=30)
    except websocket.WebSocketBadStatusException as refusal:
        return str(refusal.status_code)
    except (OSError, websocket.WebSocketException) as error:
        return type(error).__name__
    try:
        opcode, frame = ws.recv_data_frame(True)
    except (OSError, websocket.WebSocketException) as error:
        # Closed before its hello (a server out of threads drops it): counted, not fatal.
        ws.close()
        return type(error).__name__
    if opcode == websocket.ABNF.OPCODE_CLOSE:
        ws.close()
        return f"close {int.from_bytes(frame.data[:2], 'big')}"
    return ws


def measure(layout: tuple[str, int, int], asked: int, hold: float) -> dict[str, Any]:
    label, workers, threads = layout
    limits = {"WS_MAX_CLIENTS": str(asked), "WS_MAX_CLIENTS_PER_USER": str(asked)}
    with Stack("live", REDIS_NAMESPACE=NAMESPACE, WS_CLINICIAN_SEATS="0", **limits) as stack:
        stack.start_redis()
        url = stack.start_monitor(workers=workers, threads=threads).replace("http", "ws", 1)
        pids = _worker_pids(stack.processes.running["monitor"].pid)
        rss_before = sum(_status(pid, "VmRSS") for pid in pids)
        streams, refusals = [], {}
        for number in range(asked):
            opened = _open(f"{url}/api/v1/ws", stack.admin_token())
            if isinstance(opened, str):
                refusals[opened] = refusals.get(opened, 0) + 1
            else:
                streams.append(opened)
            if number % PONG_EVERY == 0:
                _answer_pings(streams)
        held_rss = sum(_status(pid, "VmRSS") for pid in pids)
        held_threads = sum(_status(pid, "Threads") for pid in pids)
        publisher = Events(stack.redis_settings["REDIS_EVENTS_URL"], NAMESPACE)
        cpu_before, started = sum(_cpu_seconds(pid) for pid in pids), time.monotonic()
        fan_out: list[float] = []
        # Events back to back for `hold` seconds, each read by every stream before the next.
        while time.monotonic() < started + hold:
            sent = time.monotonic()
            publisher.publish("vitals", {"samples": [], "n": len(fan_out)})
            for ws in streams:
                while json.loads(ws.recv())["type"] != "vitals":
                    pass
            fan_out.append(time.monotonic() - sent)
        busy = (sum(_cpu_seconds(pid) for pid in pids) - cpu_before) / (time.monotonic() - started)
        closed = 0
        for ws in streams:
            try:
                ws.close()
            except OSError:
                closed += 1  # the server had ended it
    return {
        "layout": label,
        "asked": asked,
        "held": len(streams),
        "refused": ", ".join(f"{n} x {why}" for why, n in sorted(refusals.items())) or "none",
        "OS threads": held_threads,
        "RSS MiB added": (held_rss - rss_before) / 1024,
        "events": len(fan_out),
        "fan-out p50 ms": percentile(fan_out, 0.5) * 1000 if fan_out else None,
        "fan-out max ms": max(fan_out) * 1000 if fan_out else None,
        "worker CPU cores": busy,
        "closed by server": closed,
    }


def run(quick: bool = False) -> Report:
    asked, hold = (100, 3.0) if quick else (TARGET_STREAMS, 30.0)
    layouts = [PROCFILE] if quick else [PROCFILE, THREADED, BIG_POOL]
    report = Report(
        "live",
        "Live streams one monitor instance holds",
        columns=[
            "layout",
            "asked",
            "held",
            "refused",
            "OS threads",
            "RSS MiB added",
            "events",
            "fan-out p50 ms",
            "fan-out max ms",
            "worker CPU cores",
            "closed by server",
        ],
    )
    results = []
    for layout in layouts:
        print(f"  {layout[0]}: {asked} streams …", flush=True)
        results.append(measure(layout, asked, hold))
        report.add(**results[-1])
    report.target("streams the Procfile's monitor holds", results[0]["held"], TARGET_STREAMS)
    report.parameters = {"streams asked for": asked, "seconds of events": hold}
    report.notes.append(
        "Fan-out: from publishing one empty vitals event to the last stream's copy, read by "
        "one client thread over all the streams, events back to back. Worker CPU: the "
        "workers' CPU time over those seconds (each stream also wakes every second; a worker "
        "re-checks all its streams' sessions in one round every WS_SESSION_CHECK_SECONDS)."
    )
    return report
