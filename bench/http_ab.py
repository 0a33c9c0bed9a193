"""Server CPU per request over HTTP of monitor_app at another commit and at this tree's, side
by side on the same machine, database and gunicorn layout.

`python -m bench.http_ab --base COMMIT [--seconds S] [--rounds R] [--connections C]`

The other commit is checked out into a temporary worktree and served from there by this
tree's virtualenv, so both run the same libraries. Both servers answer the query benchmark's
50 k-row SQLite database (one copy each, so neither's audit rows slow the other's reads), as
the same admin, with the same Redis and rate limits off. Each round loads one endpoint on
both, in alternating order, for the same seconds with wrk; the figure is the gunicorn
workers' CPU over the round divided by the requests answered, and the ratio is this tree's
median over the base's. On a shared machine a round's CPU varies, which the alternation and
the median even out; in-process instructions (`python -m bench.request_cpu --callgrind`)
are the steadier figure, this one is what a served request costs with gunicorn and the pool.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import query_profile
from bench.query import load
from bench.query_data import Database, database
from bench.report import ROOT, Report
from bench.stack import Stack

PREFIX = "/api/v1"
PATIENTS, SAMPLES = 50, 1_000
WORKERS, THREADS = 2, 16


def workloads(db: Database) -> dict[str, list[str]]:
    uuids = db.uuids()
    return {
        "metrics?limit=100": [f"{PREFIX}/patient/{u}/metrics?limit=100" for u in uuids],
        "patient detail": [f"{PREFIX}/patients/{u}" for u in uuids],
        "history?window=24h": [
            f"{PREFIX}/patient/{u}/history?window=24h&to={db.until}" for u in uuids
        ],
    }


@contextmanager
def worktree(commit: str) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="vigil-http-ab-"))
    tree = folder / "tree"
    subprocess.run(  # noqa: S603
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit],  # noqa: S607
        check=True,
        capture_output=True,
    )
    try:
        yield tree
    finally:
        subprocess.run(  # noqa: S603
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],  # noqa: S607
            check=False,
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


def serve(stack: Stack, name: str, tree: Path, seed: Path) -> tuple[str, int]:
    """monitor_app of `tree` on threads, on its own copy of the database: its URL and master."""
    copy = stack.folder / f"{name}.db"
    shutil.copyfile(seed, copy)
    copy.chmod(0o600)
    url = stack.start_monitor(
        WORKERS,
        THREADS,
        name,
        cwd=tree,
        DATABASE_URL=f"sqlite:///{copy}",
        PYTHONPATH=str(tree),
    )
    return url, stack.processes.running[name].pid


def run(base: str, seconds: int, rounds: int, connections: int) -> Report:
    report = Report(
        "http-ab",
        f"Server CPU per request over HTTP: this tree ÷ {base}",
        ["endpoint", "base CPU ms/req", "this CPU ms/req", "this ÷ base", "rounds"],
        parameters={
            "rows": PATIENTS * SAMPLES,
            "gunicorn": f"{WORKERS}×{THREADS} threads",
            "wrk connections": connections,
            "seconds a round": seconds,
        },
    )
    source = database(PATIENTS, SAMPLES)
    sizes = argparse.Namespace(connections=connections)
    with worktree(base) as base_tree, tempfile.TemporaryDirectory() as scratch:
        # The admin is put on record in one copy; each server gets its own copy of that.
        seed = Path(scratch) / "seed.db"
        shutil.copyfile(source.path, seed)
        seed.chmod(0o600)
        with Stack("http-ab", DATABASE_URL=f"sqlite:///{seed}") as stack:
            stack.start_redis()
            token = stack.admin_token()
            started = {
                "base": serve(stack, "base", base_tree, seed),
                "this": serve(stack, "this", ROOT, seed),
            }
            paths_of = workloads(source)
            paths = [path for paths in paths_of.values() for path in paths]
            servers = {}
            for side, (url, master) in started.items():
                # Every worker up, its imports, pool and caches warm, before its pids are read.
                load(url, [], paths, 2, sizes, stack.folder, token)
                servers[side] = (url, query_profile.worker_pids(master))
            measure(report, paths_of, servers, seconds, rounds, sizes, stack, token)
    report.notes.append(
        "rounds: base/this ms of server CPU per request in each round; wrk and both servers "
        "share this machine's cores."
    )
    return report


def measure(
    report: Report,
    paths_of: dict[str, list[str]],
    servers: dict[str, tuple[str, list[int]]],
    seconds: int,
    rounds: int,
    sizes: argparse.Namespace,
    stack: Stack,
    token: str,
) -> None:
    for name, paths in paths_of.items():
        per_side: dict[str, list[float]] = {"base": [], "this": []}
        for number in range(rounds):
            order = ("base", "this") if number % 2 == 0 else ("this", "base")
            for side in order:
                url, pids = servers[side]
                figures, cpu = load(url, pids, paths, seconds, sizes, stack.folder, token)
                if figures["non2xx"] or figures["socket_errors"]:
                    raise RuntimeError(f"{side} {name}: {figures}")
                per_side[side].append(cpu["server CPU ms/req"])
        base_ms = statistics.median(per_side["base"])
        this_ms = statistics.median(per_side["this"])
        report.add(
            endpoint=name,
            **{
                "base CPU ms/req": base_ms,
                "this CPU ms/req": this_ms,
                "this ÷ base": this_ms / base_ms,
                "rounds": " ".join(
                    f"{b:.2f}/{t:.2f}"
                    for b, t in zip(per_side["base"], per_side["this"], strict=True)
                ),
            },
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http_ab", description=__doc__)
    parser.add_argument("--base", required=True, help="the commit to compare with")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args(argv)
    report = run(args.base, args.seconds, args.rounds, args.connections)
    print(report.markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
