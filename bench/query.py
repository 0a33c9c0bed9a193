"""Query: monitor_app's read endpoints on a small and a large database, beside their SQL alone.

For each database size (bench/query_data.py builds and keeps the files; a run measures a
copy) monitor_app is served as the Procfile serves it (gunicorn, 2 gevent workers), with
a private Redis and the rate limit off, and `wrk` in its own process keeps 16 connections busy
on one endpoint at a time (bench/query.lua), each request sending an admin's bearer token. The
floor beside each endpoint is the SQL that endpoint runs (the token's account lookup among
it), captured from the app itself, replayed through Python's sqlite3 on the same file in one
thread (bench/query_floor.py). The workers' CPU time per request is read from /proc
(bench/query_profile.py).

`python -m bench query [--quick]`. BENCH_QUERY_PATIENTS (e.g. "50,5000"),
BENCH_QUERY_SAMPLES (per patient) and BENCH_QUERY_SECONDS (per endpoint) override the sizes.
BENCH_PROFILE=1 then also samples the workers with py-spy during an extra run of the metrics
endpoint on the largest database, into var/bench/query-profile.{txt,collapsed}.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import query_profile
from bench.query_data import Database, database, describe, remove_stale, working_copy
from bench.query_floor import Driver, SqliteDriver, capture_sql, sql_floor
from bench.report import OUTPUT_DIR, ROOT, Report
from bench.stack import Stack
from devserver.ports import free_port
from shared.config import RedisRole, redis_url_setting

LUA_SCRIPT = Path(__file__).resolve().parent / "query.lua"
PREFIX = "/api/v1"
# As the Procfile serves monitor_app.
WORKERS, THREADS = 2, 16
# One wrk thread keeps 16 connections busy with a few per cent of a core; a second would only
# take CPU from the server on a small machine.
WRK_THREADS = 1
METRICS = "metrics?limit=100"
# The layout of the Procfile's monitor_app, as a path column says it.
GEVENT_PATH = f"HTTP (Procfile: gunicorn {WORKERS}× gevent, wrk)"
THREADS_PATH = f"HTTP (gunicorn {WORKERS}×{THREADS} threads, wrk)"
# The target for the metrics endpoint at 16 connections.
METRICS_P99_MS = 25.0
# The workload served by a monitor_app whose cache's Redis is a port where nothing listens.
# Its reads fall through to the database as when Redis is down: the refused connection costs
# a fraction of a millisecond on loopback (no connect timeout is waited for), and the warning
# comes once per half-minute per worker (monitor_app/caching.py), not per request.
UNCACHED = "patients"
COLUMNS = [
    "rows",
    "endpoint",
    "path",
    "req/s",
    "p50 ms",
    "p99 ms",
    "requests",
    "non-2xx",
    "errors",
    "cache hit %",
    "server CPU ms/req",
    "CPU per worker %",
]


@dataclass(frozen=True)
class Sizes:
    # Patients per database, each with the same samples: only the table size differs.
    patients: tuple[int, ...] = (50, 5_000)
    samples_per_patient: int = 1_000
    seconds: int = 20  # of wrk per endpoint
    connections: int = 16
    floor_seconds: float = 1.5


QUICK = Sizes(patients=(50, 200), seconds=3, floor_seconds=0.5)


def sizes_from_env(sizes: Sizes) -> Sizes:
    """The sizes with BENCH_QUERY_* overrides applied."""
    overrides: dict[str, Any] = {}
    if patients := os.environ.get("BENCH_QUERY_PATIENTS"):
        overrides["patients"] = tuple(int(n) for n in patients.split(","))
    if samples := os.environ.get("BENCH_QUERY_SAMPLES"):
        overrides["samples_per_patient"] = int(samples)
    if seconds := os.environ.get("BENCH_QUERY_SECONDS"):
        overrides["seconds"] = int(seconds)
    return replace(sizes, **overrides)


def endpoints(db: Database) -> dict[str, list[str]]:
    """Per endpoint, the request paths wrk cycles through, in an order that hops around."""
    uuids = db.uuids()
    random.Random(7).shuffle(uuids)  # noqa: S311  (an order, not a secret)
    # A fixed `to` just after the newest sample: a cached file gives the same 24 h of data
    # whenever it is run, all of each patient's samples.
    return {
        METRICS: [f"{PREFIX}/patient/{u}/metrics?limit=100" for u in uuids],
        "history?window=24h": [
            f"{PREFIX}/patient/{u}/history?window=24h&to={db.until}" for u in uuids
        ],
        # The page is cached, under its validated arguments only (a parameter the API ignores
        # changes nothing), so this is asked of a second monitor_app whose cache is down:
        # every request reads the database (UNCACHED).
        UNCACHED: [f"{PREFIX}/patients"],
        # The dashboard's own request, answered from Redis after the first time.
        "patients (cached)": [f"{PREFIX}/patients"],
    }


def run_wrk(
    url: str, paths: list[str], seconds: int, connections: int, folder: Path, token: str
) -> dict[str, Any]:
    """wrk's figures for `seconds` of `connections` clients cycling through `paths`, signed
    in with `token`."""
    paths_file = folder / "paths.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    command = [
        "wrk",
        "-t",
        str(WRK_THREADS),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        "10s",
        # wrk.format() in the script adds the -H headers to every request.
        "-H",
        f"Authorization: Bearer {token}",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        str(paths_file),
        str(WRK_THREADS),
        str(time.monotonic_ns()),
    ]
    finished = subprocess.run(  # noqa: S603
        command,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    lines = [line for line in finished.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"wrk printed no figures:\n{finished.stdout}\n{finished.stderr}")
    figures = json.loads(lines[-1])
    if figures["non2xx"] and figures["non2xx"] == figures["requests"]:
        # Every answer an error (a 401 for a token the server refuses, say): nothing measured.
        raise RuntimeError(f"{url}: every request of {paths[0]}… answered an error")
    figures["rate"] = figures["requests"] / figures["duration_s"]
    return figures


def profile_metrics(
    master_pid: int, url: str, paths: list[str], sizes: Sizes, folder: Path, token: str
) -> Path:
    """py-spy on the workers while wrk loads the metrics endpoint; the summary's path."""
    collapsed = OUTPUT_DIR / "query-profile.collapsed"
    spy = query_profile.record(master_pid, sizes.seconds, collapsed)
    try:
        time.sleep(1)  # attaching to every worker takes a moment
        run_wrk(url, paths, sizes.seconds, sizes.connections, folder, token)
        _, errors = spy.communicate(timeout=60)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    if spy.returncode != 0:
        raise RuntimeError(f"py-spy failed: {errors[-2000:]}")
    summary = OUTPUT_DIR / "query-profile.txt"
    summary.write_text(query_profile.summarise(collapsed))
    return summary


def measure_size(
    db: Database, sizes: Sizes, report: Report, profile: bool = False
) -> dict[str, dict[str, Any]]:
    """Floor and HTTP figures of every endpoint on one database; adds their rows."""
    served: dict[str, dict[str, Any]] = {}
    workloads = endpoints(db)
    with Stack("query", DATABASE_URL=db.url) as stack:
        stack.start_redis()
        token = stack.admin_token()
        no_cache = {redis_url_setting(RedisRole.CACHE): f"redis://127.0.0.1:{free_port()}/0"}
        # The cached page is answered by Redis: it has no SQL. The others are captured with
        # the cache down, so that every request of UNCACHED runs its SQL.
        captured = capture_sql(
            db.url,
            {**stack.redis_settings, **no_cache, **stack.key_settings()},
            token,
            {name: paths for name, paths in workloads.items() if "cached" not in name},
        )
        floors(
            report,
            db.rows,
            captured,
            lambda: SqliteDriver(str(db.path)),
            "SQL floor (sqlite3)",
            sizes.floor_seconds,
        )
        # As the Procfile serves it: gevent's worker, SQLite's lock waits off its loop.
        url = stack.start_monitor(workers=WORKERS)
        uncached_url = stack.start_monitor(workers=WORKERS, name="monitor-uncached", **no_cache)
        master = stack.processes.running["monitor"].pid
        # Warm every worker's imports, pool and page cache before anything is measured.
        mixed = [
            path for name, paths in workloads.items() if name != UNCACHED for path in paths[:500]
        ]
        run_wrk(url, mixed, 1, sizes.connections, stack.folder, token)
        run_wrk(uncached_url, workloads[UNCACHED], 1, sizes.connections, stack.folder, token)
        pids = {
            server: query_profile.worker_pids(stack.processes.running[process].pid)
            for server, process in ((url, "monitor"), (uncached_url, "monitor-uncached"))
        }
        for name, paths in workloads.items():
            server = uncached_url if name == UNCACHED else url
            seconds = max(2, sizes.seconds // 4) if "cached" in name else sizes.seconds
            figures, cpu = load(server, pids[server], paths, seconds, sizes, stack.folder, token)
            stack.check_running()
            served[name] = {**figures, "cpu_ms": cpu.get("server CPU ms/req")}
            report.add(**http_row(db.rows, name, GEVENT_PATH, figures, cpu))
        # The same metrics workload on threads, the layout before gevent's (and still
        # `python -m monitor_app`'s): wrk's keep-alive connections stay with the worker that
        # accepted them, and 16 threads of one worker contend for its GIL.
        threads_url = stack.start_monitor(workers=WORKERS, threads=THREADS, name="monitor-threads")
        threads_pids = query_profile.worker_pids(stack.processes.running["monitor-threads"].pid)
        run_wrk(threads_url, workloads[METRICS][:500], 1, sizes.connections, stack.folder, token)
        figures, cpu = load(
            threads_url, threads_pids, workloads[METRICS], sizes.seconds, sizes, stack.folder, token
        )
        stack.check_running()
        served[f"{METRICS} on threads"] = {**figures, "cpu_ms": cpu.get("server CPU ms/req")}
        report.add(**http_row(db.rows, METRICS, THREADS_PATH, figures, cpu))
        if profile:
            summary = profile_metrics(master, url, workloads[METRICS], sizes, stack.folder, token)
            shares = query_profile.layers(OUTPUT_DIR / "query-profile.collapsed")
            report.notes.append(
                f"py-spy profile of {METRICS} at {db.rows:,} rows (the thread holding the GIL, "
                "by the code running): "
                + ", ".join(f"{name} {100 * share:.0f}%" for name, share in shares)
                + f"; functions in {summary.relative_to(ROOT)}."
            )
    return served


def floors(
    report: Report,
    rows: int,
    captured: dict[str, list[list[tuple]]],
    connect: Callable[[], Driver],
    path: str,
    seconds: float,
) -> dict[str, dict[str, Any]]:
    """Each endpoint's SQL floor (its captured statements through the driver alone): a row
    each, and a note of every statement's p50/p99."""
    found, per_statement = {}, []
    for name, requests in captured.items():
        floor = found[name] = sql_floor(connect, requests, seconds)
        per_statement.append(
            f"{name}: "
            + "; ".join(f"{label} {p50:.2f}/{p99:.2f}" for label, p50, p99 in floor["statements"])
        )
        report.add(
            **{
                "rows": rows,
                "endpoint": name,
                "path": path,
                "req/s": floor["rate"],
                "p50 ms": floor["p50"],
                "p99 ms": floor["p99"],
                "requests": floor["requests"],
            }
        )
    report.notes.append(
        f"{path} per statement at {rows:,} rows, p50/p99 ms — " + " | ".join(per_statement)
    )
    return found


def run(quick: bool = False, sizes: Sizes | None = None) -> Report:
    sizes = sizes or sizes_from_env(QUICK if quick else Sizes())
    if shutil.which("wrk") is None:
        raise RuntimeError("the query benchmark needs wrk: apt-get install -y wrk")
    report = Report(
        "query",
        "Query: monitor_app read endpoints vs their SQL alone",
        COLUMNS,
        parameters={
            "connections": sizes.connections,
            "seconds per endpoint": sizes.seconds,
            "samples per patient": sizes.samples_per_patient,
            "patients": ", ".join(f"{n:,}" for n in sizes.patients),
        },
    )
    profile = os.environ.get("BENCH_PROFILE") == "1"
    if profile and not query_profile.available():
        report.notes.append(
            "BENCH_PROFILE=1 but py-spy is not installed "
            "(pip install --require-hashes -r requirements/bench.lock): no profile."
        )
        profile = False
    served: dict[int, dict[str, dict[str, Any]]] = {}
    for name in remove_stale():
        print(f"Removed {name}: not its size's recipe any more, or left by an unfinished build")
    for patients in sizes.patients:
        with working_copy(database(patients, sizes.samples_per_patient)) as db:
            print(describe(db), flush=True)
            report.notes.append(f"{describe(db)}.")
            report.parameters[f"build s ({db.rows:,} rows)"] = db.build_seconds
            served[db.rows] = measure_size(
                db, sizes, report, profile=profile and patients == max(sizes.patients)
            )
    small, large = min(served), max(served)
    report.target(
        f"metrics endpoint p99 at {large:,} rows, ms",
        served[large][METRICS]["p99_ms"],
        METRICS_P99_MS,
        higher_is_better=False,
    )
    if served[large][METRICS]["p99_ms"] > METRICS_P99_MS:
        report.notes.append(latency_bound(served[large][METRICS], sizes.connections))
        report.notes.append(where_a_request_goes(served[large][METRICS]))
    report.target(
        f"metrics endpoint p99 at {large:,} rows ÷ p99 at {small:,} rows "
        "(≤ 1.5: latency does not grow with the table)",
        served[large][METRICS]["p99_ms"] / served[small][METRICS]["p99_ms"],
        1.5,
        higher_is_better=False,
    )
    hit_rates = ", ".join(
        f"{name} {_hit_rate(served[rows][name])} at {rows:,} rows"
        for name in ("patients", "patients (cached)")
        for rows in served
    )
    report.notes += [
        f"Every database has the same {sizes.samples_per_patient:,} samples per patient (5-s "
        "spacing ending when it was built); only the number of patients, and so the table "
        "size, differs.",
        "metrics and history are not cached by monitor_app. `patients` is the dashboard's "
        "plain URL asked of a second monitor_app whose cache's Redis is a closed port, so "
        "every request reads the database (the cache keys only the validated arguments: a "
        "parameter the API ignores would still hit); `patients (cached)` is the same URL "
        f"asked of the first. Cache hits (X-Cache): {hit_rates}.",
        "server CPU ms/req: the gunicorn workers' user + system CPU time during the run, "
        "divided by the requests answered; CPU per worker: each worker's share of it (wrk's "
        "keep-alive connections stay with the worker that accepted them, and one worker may "
        "accept them all).",
        "SQL floor: the statements monitor_app sends for each request (captured from the app), "
        "replayed through sqlite3 in one thread on the same file; req/s is that one thread's.",
        f"wrk and the server share this machine's {os.cpu_count()} cores.",
    ]
    return report


def load(
    server: str,
    workers: list[int],
    paths: list[str],
    seconds: int,
    sizes: Any,
    folder: Path,
    token: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """wrk's figures for one workload, and the CPU columns of the server's `workers` over it."""
    cpu_before = [query_profile.cpu_seconds(pid) for pid in workers]
    figures = run_wrk(server, paths, seconds, sizes.connections, folder, token)
    cpu_used = [
        query_profile.cpu_seconds(pid) - before
        for pid, before in zip(workers, cpu_before, strict=True)
    ]
    return figures, _cpu_columns(cpu_used, figures["requests"])


def latency_bound(figures: dict[str, Any], connections: int) -> str:
    """What keeps the metrics p99 above its target, from the run's own figures."""
    rate, cpu_ms = figures["rate"], figures.get("cpu_ms")
    mean = 1000 * connections / rate
    text = (
        f"What bounds the metrics p99: each of wrk's {connections} connections waits for its "
        f"answer before it asks again, so the mean latency is connections ÷ throughput "
        f"(Little's law): {connections} ÷ {rate:.0f} req/s = {mean:.1f} ms (p50 measured "
        f"{figures['p50_ms']:.1f} ms)."
    )
    if cpu_ms:
        cores = cpu_ms * rate / 1000
        needed = 1000 * connections / METRICS_P99_MS
        allowed = 1000 * cores / needed
        text += (
            f" The throughput is the workers' CPU: {cpu_ms:.2f} ms a request on the "
            f"{cores:.2f} of {os.cpu_count()} cores they got (the rest went to wrk and what "
            f"else runs). Even a mean of {METRICS_P99_MS:.0f} ms at {connections} connections "
            f"takes {needed:.0f} req/s: at most {allowed:.2f} ms of CPU a request on those "
            f"cores, {cpu_ms / allowed:.1f}× less than now, and the p99 needs less still."
        )
    return text


def where_a_request_goes(figures: dict[str, Any]) -> str:
    """The metrics endpoint's CPU in-process (bench/request_cpu.py: no HTTP, no gunicorn),
    by layer, beside what the HTTP run's workers spent."""
    output = OUTPUT_DIR / "request-cpu.json"
    command = [sys.executable, "-m", "bench.request_cpu", "--only", "metrics (admin"]
    command += ["--requests", "300", "--repeats", "5", "--layers", "--json", str(output)]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)  # noqa: S603
    (measured,) = json.loads(output.read_text()).values()
    text = (
        f"Where a metrics request's CPU goes: in-process (bench/request_cpu.py, Flask's test "
        f"client on a copy of the 50,000-row database) it takes {measured['median_ms']:.2f} ms"
    )
    if figures.get("cpu_ms"):
        text += (
            f" of the {figures['cpu_ms']:.2f} ms the HTTP run's workers spent a request (the "
            "rest: gunicorn, gevent's loop and HTTP)"
        )
    return (
        text
        + "; by layer (cProfile's own time; SQLite's C work is the driver's): "
        + ", ".join(f"{name} {100 * share:.0f}%" for name, share in measured["layers"].items())
        + "."
    )


def http_row(
    rows: int, endpoint: str, path: str, figures: dict[str, Any], cpu: dict[str, Any]
) -> dict[str, Any]:
    """The report's row of one workload served over HTTP."""
    return {
        "rows": rows,
        "endpoint": endpoint,
        "path": path,
        "req/s": figures["rate"],
        "p50 ms": figures["p50_ms"],
        "p99 ms": figures["p99_ms"],
        "requests": figures["requests"],
        "non-2xx": figures["non2xx"],
        "errors": figures["socket_errors"] + figures["timeouts"],
        "cache hit %": _hit_rate(figures),
        **cpu,
    }


def _cpu_columns(cpu_used: list[float], requests: int) -> dict[str, Any]:
    # A keep-alive connection stays with the worker that accepted it, and a gthread worker
    # accepts while it has fewer than `worker_connections` (1000): one may take every client.
    total = sum(cpu_used)
    if not total or not requests:
        return {}
    return {
        "server CPU ms/req": 1000 * total / requests,
        "CPU per worker %": "/".join(
            f"{100 * used / total:.0f}" for used in sorted(cpu_used, reverse=True)
        ),
    }


def _hit_rate(figures: dict[str, Any]) -> str:
    answered = figures["cache_hits"] + figures["cache_misses"]
    return f"{100 * figures['cache_hits'] / answered:.1f}%" if answered else "–"
