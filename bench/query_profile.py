"""Where monitor_app's workers spend their time under load: CPU per worker, and py-spy.

py-spy reads the gunicorn workers' stacks from outside, so the server runs unmodified, as in
the benchmark. It samples only the thread holding the GIL (`--gil`): with 16 threads per
worker, the others mostly wait for it, and py-spy cannot always tell that wait from work.
SQLite's C code releases the GIL, so the time inside SQLite itself is not in the shares; the
benchmark's SQL floor measures it instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.report import ROOT

PY_SPY = str(Path(sys.executable).parent / "py-spy")
RATE = 200  # samples a second per process


def available() -> bool:
    return Path(PY_SPY).exists() or shutil.which("py-spy") is not None


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def worker_pids(master_pid: int) -> list[int]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def record(master_pid: int, seconds: int, collapsed: Path) -> subprocess.Popen:
    """Start sampling the gunicorn master's workers for `seconds`, into a collapsed-stack file."""
    command = [
        PY_SPY if Path(PY_SPY).exists() else "py-spy",
        "record",
        "--pid",
        str(master_pid),
        "--subprocesses",
        "--gil",
        "--rate",
        str(RATE),
        "--duration",
        str(seconds),
        "--format",
        "raw",
        "--output",
        str(collapsed),
    ]
    return subprocess.Popen(  # noqa: S603
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def summarise(collapsed: Path, top: int = 30) -> str:
    """Self and inclusive shares of the busiest functions (and of each worker process)."""
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        total += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no samples\n"
    lines = [f"{total} samples of the GIL-holding thread", "", "self %  function"]
    lines += [f"{100 * n / total:5.1f}  {name}" for name, n in self_counts.most_common(top)]
    lines += ["", "incl %  function"]
    lines += [f"{100 * n / total:5.1f}  {name}" for name, n in inclusive.most_common(top * 2)]
    return "\n".join(lines) + "\n"


# The layer a frame's time belongs to, by the first prefix its path starts with.
LAYERS = (
    (("flask/", "werkzeug/", "flask_sock/", "simple_websocket/"), "Flask and Werkzeug"),
    (("flask_smorest/", "webargs/", "marshmallow/", "apispec/"), "flask-smorest and marshmallow"),
    (("sqlalchemy/",), "SQLAlchemy"),
    (("sqlite3/", "psycopg/", "psycopg_pool/"), "database driver"),
    (("json/", "msgspec/", "orjson/"), "JSON"),
    (("gunicorn/", "gevent/", "socketserver", "selectors", "socket", "ssl"), "server and I/O"),
    (("redis/",), "Redis client"),
    (("monitor_app/auth/", "shared/auth/"), "Vigil: sign-in and access"),
    (("monitor_app/audit/", "shared/audit"), "Vigil: audit"),
    (("monitor_app/", "shared/"), "Vigil: the endpoint's own code"),
    (("logging/",), "logging"),
)


def layers(collapsed: Path) -> list[tuple[str, float]]:
    """Each layer's share of py-spy's samples, by the frame that was running (self time),
    most first."""
    counts: Counter[str] = Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        frame = _short(stack.split(";")[-1])
        counts[layer_of(frame.rpartition(" (")[2].rstrip(")"))] += int(count_text)
    total = sum(counts.values())
    return [(name, n / total) for name, n in counts.most_common()] if total else []


def layer_of(path: str) -> str:
    """The layer of the code at `path`: a file's path, short or absolute."""
    path = short_path(path)
    if "python3." in path:  # the standard library: json/…, logging/…
        path = path.split("python3.", 1)[1].partition("/")[2]
    for prefixes, name in LAYERS:
        if path.startswith(prefixes):
            return name
    return "other (Python's library, the interpreter)"


def short_path(path: str) -> str:
    """A file's path from its package: 'flask/app.py', 'monitor_app/metrics/routes.py'."""
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1]
    if path.startswith(f"{ROOT}/"):
        return path[len(f"{ROOT}/") :]
    if "/lib/python3" in path:
        return path.split("/lib/", 1)[1]
    return path


def _short(frame: str) -> str:
    """'get (monitor_app/metrics/routes.py:27)' → 'get (monitor_app/metrics/routes.py)'."""
    if frame.startswith("process "):  # 'process 123:"<command line>"'
        return frame.split(":", 1)[0]
    name, _, where = frame.partition(" (")
    path = short_path(where.rstrip(")").rsplit(":", 1)[0])
    return f"{name} ({path})" if path else name
