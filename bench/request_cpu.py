"""CPU time per request of monitor_app's read endpoints, in-process: no HTTP, no gunicorn.

The app answers Flask's test client on a copy of the query benchmark's small database (a
fresh copy per run, so every run reads and writes the same rows), with a private Redis, the
rate limit off, as an admin signed in with an access token and as an integration with an API
token on record. Each endpoint is warmed, then timed in `repeats` batches of `requests`; the
figure is the median batch's process CPU time per request. `--profile` adds a cProfile of the
metrics endpoint, or of the first endpoint `--only` names (cumulative times of its busiest
functions).

`python -m bench.request_cpu [--requests N] [--repeats R] [--only TEXT] [--profile]
[--json FILE]`.

On a shared machine CPU time varies by half from one batch to the next. Instructions do not:
run one workload under callgrind with `--callgrind`, which switches its instrumentation on
for the timed batches only; callgrind's "Collected" divided by the requests is the figure:

    valgrind --tool=callgrind --instr-atstart=no python -m bench.request_cpu \\
        --callgrind --only "metrics (admin" --requests 30 --repeats 1
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from bench import query_profile
from bench.query_data import database
from bench.report import write_json
from bench.stack import Stack

PREFIX = "/api/v1"
PATIENTS, SAMPLES = 50, 1_000


def endpoints(uuids: list[str], until: str) -> dict[str, Callable[[int], str]]:
    """Per endpoint, the path of its n-th request: one patient after another. The history
    windows end at `until`, just after the newest sample: the hour's from the samples (360
    buckets), the day's from the per-minute rollups (all of each patient's samples)."""

    def each(template: str) -> Callable[[int], str]:
        return lambda n: template.format(uuid=uuids[n % len(uuids)])

    return {
        "metrics": each(PREFIX + "/patient/{uuid}/metrics?limit=100"),
        "patient": each(PREFIX + "/patients/{uuid}"),
        "alarm-limits": each(PREFIX + "/patients/{uuid}/alarm-limits"),
        "history 1h": each(PREFIX + "/patient/{uuid}/history?window=1h&to=" + until),
        "history 24h": each(PREFIX + "/patient/{uuid}/history?window=24h&to=" + until),
    }


def api_token(app: Any, email: str) -> str:
    """An integration's API token holding patients:read, on record in the app's database."""
    from monitor_app.auth import services
    from shared.auth.roles import Role, Scope
    from shared.db import db

    with db.sessionmaker(app).begin() as session:
        user = services.find_user(session, email) or services.create_user(
            session, email, Role.INTEGRATION
        )
        signer = app.extensions["vigil.token_signer"]
        _row, token = services.create_api_token(
            session, signer, user, "bench", [Scope.PATIENTS_READ]
        )
    return token


def cpu_per_request(
    client: FlaskClient,
    path: Callable[[int], str],
    requests: int,
    repeats: int,
    callgrind: bool = False,
) -> list[float]:
    """Process CPU ms per request of each batch (after a warm-up batch)."""
    batches = []
    for batch in range(repeats + 1):
        if callgrind and batch == 1:
            instrument(True)
        started = time.process_time()
        for n in range(requests):
            response = client.get(path(n))
            if response.status_code != 200:
                raise RuntimeError(f"{path(n)} answered {response.status_code}")
        if batch:  # the first warms imports, caches and the pool
            batches.append(1000 * (time.process_time() - started) / requests)
    if callgrind:
        instrument(False)
    return batches


def instrument(on: bool) -> None:
    """Switch callgrind's instrumentation of this process on or off."""
    command = ["callgrind_control", "--instr=" + ("on" if on else "off"), str(os.getpid())]
    subprocess.run(command, check=True, capture_output=True)  # noqa: S603


def profile(client: FlaskClient, path: Callable[[int], str], requests: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for n in range(requests):
        client.get(path(n))
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(90)
    return out.getvalue()


# The test client's own code: left out of the layers.
TEST_CLIENT = ("werkzeug/test.py", "flask/testing.py")


def layers(client: FlaskClient, path: Callable[[int], str], requests: int) -> dict[str, float]:
    """Each layer's share of the CPU the requests took (cProfile's own time of each function,
    by the package it is in; C functions by what they do: SQLite's own work is the driver's).
    The test client's building of each request is left out."""
    profiler = cProfile.Profile()
    profiler.enable()
    for n in range(requests):
        client.get(path(n))
    profiler.disable()
    shares: dict[str, float] = {}
    for (file, _line, name), (_calls, _primitive, own, _cumulative, _callers) in pstats.Stats(
        profiler
    ).stats.items():  # type: ignore[attr-defined]
        if file.endswith(TEST_CLIENT):
            continue  # building the request, which a served one does not do
        layer = _builtin_layer(name) if file == "~" else query_profile.layer_of(file)
        shares[layer] = shares.get(layer, 0.0) + own
    total = sum(shares.values()) or 1.0
    return {name: own / total for name, own in sorted(shares.items(), key=lambda s: -s[1])}


def _builtin_layer(name: str) -> str:
    if "sqlite3" in name or "psycopg" in name:
        return "database driver"
    if "json" in name or "msgspec" in name:
        return "JSON"
    return "other (Python's library, the interpreter)"


@contextmanager
def served() -> Iterator[tuple[Flask, dict[str, str], dict[str, Callable[[int], str]]]]:
    """The app on a fresh copy of the database, its callers' tokens, and its endpoints."""
    from monitor_app import create_app
    from shared.db import db

    source = database(PATIENTS, SAMPLES)
    with Stack("request-cpu") as stack:
        copy = stack.folder / "vigil.db"
        shutil.copyfile(source.path, copy)
        copy.chmod(0o600)  # as Vigil keeps its database file (shared/db.py)
        stack.start_redis()
        admin = stack.admin_token()
        app = create_app(
            {
                **stack.redis_settings,
                **stack.key_settings(),
                "DATABASE_URL": f"sqlite:///{copy}",
                "RATE_LIMIT_ENABLED": False,
                "LOG_LEVEL": "WARNING",
            }
        )
        tokens = {
            "admin access token": admin,
            "API token": api_token(app, "bench-integration@vigil.bench"),
        }
        try:
            yield app, tokens, endpoints(source.uuids(), source.until)
        finally:
            db.engine(app).dispose()


def client_for(app: Flask, token: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def run(
    requests: int,
    repeats: int,
    with_profile: bool,
    only: str | None = None,
    callgrind: bool = False,
    with_layers: bool = False,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with served() as (app, tokens, paths):
        for caller, token in tokens.items():
            client = client_for(app, token)
            for name, path in paths.items():
                if only and only not in f"{name} ({caller})":
                    continue
                batches = cpu_per_request(client, path, requests, repeats, callgrind)
                results[f"{name} ({caller})"] = {
                    "median_ms": statistics.median(batches),
                    "batches_ms": [round(b, 3) for b in batches],
                }
                if with_layers:
                    results[f"{name} ({caller})"]["layers"] = layers(client, path, requests)
        if with_profile:
            client = client_for(app, tokens["admin access token"])
            named = [name for name in paths if only and only in f"{name} (admin access token)"]
            results["profile"] = profile(client, paths[(named or ["metrics"])[0]], requests)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.request_cpu", description=__doc__)
    parser.add_argument("--requests", type=int, default=300, help="per batch")
    parser.add_argument("--repeats", type=int, default=7, help="timed batches per endpoint")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--layers", action="store_true", help="also each layer's share of each workload's CPU"
    )
    parser.add_argument("--only", help="only the workloads whose name holds this text")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--callgrind", action="store_true", help="under callgrind: instrument the timed batches"
    )
    args = parser.parse_args()
    if args.callgrind and not args.only:
        parser.error("--callgrind counts one workload: name it with --only")
    results = run(args.requests, args.repeats, args.profile, args.only, args.callgrind, args.layers)
    report = results.pop("profile", None)
    for name, figures in results.items():
        print(f"{name:32} {figures['median_ms']:6.3f} ms CPU/request  {figures['batches_ms']}")
        for layer, share in figures.get("layers", {}).items():
            print(f"    {100 * share:5.1f}%  {layer}")
    if report:
        print(report)
    if args.json:
        write_json(args.json, results)


if __name__ == "__main__":
    main()
