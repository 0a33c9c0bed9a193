"""Run an app under gunicorn from Python (`python -m <app>`), with Vigil's worker hooks.

`gunicorn '<app>:create_app()'` from the project root picks up the same hooks through
`gunicorn.conf.py`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from shared.lifecycle import start_background, stop_background
from shared.logging import GUNICORN_LOGCONFIG

# prometheus_client picks its storage when first imported, so this is read before that.
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_OWNED_METRICS_DIR = "VIGIL_OWNS_PROMETHEUS_DIR"
# gthread, but a thread only for a request that has arrived: slow clients cannot hold them.
WORKER_CLASS = "shared.buffering_worker.BufferingThreadWorker"
# monitor_app's in the Procfile: a greenlet a connection, so a live stream holds no thread.
GEVENT_WORKER_CLASS = "shared.gevent_worker.BoundedGeventWorker"


def prepare_metrics_dir() -> None:
    """Give the gunicorn workers a fresh folder to share their metrics through.

    Call it before anything imports prometheus_client. A folder given in the environment is
    used as it is; one made here is removed when the process that made it exits.
    """
    if not os.environ.get(METRICS_DIR_VARIABLE):
        os.environ[METRICS_DIR_VARIABLE] = tempfile.mkdtemp(prefix="vigil-prometheus-")
        os.environ[_OWNED_METRICS_DIR] = str(os.getpid())
    if os.environ.get(_OWNED_METRICS_DIR) == str(os.getpid()):
        # Also when the master never serves (a port in use, --check-config): no on_exit then.
        atexit.register(_remove_metrics_dir)


def _remove_metrics_dir() -> None:
    # Forked workers inherit the atexit handler: only the folder's maker removes it.
    if os.environ.get(_OWNED_METRICS_DIR) == str(os.getpid()):
        del os.environ[_OWNED_METRICS_DIR]
        shutil.rmtree(os.environ.pop(METRICS_DIR_VARIABLE), ignore_errors=True)


def child_exit(_server, worker) -> None:
    """Drop a dead worker's live gauges (WebSocket clients, lag) from the sums."""
    if os.environ.get(METRICS_DIR_VARIABLE):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(_server) -> None:
    _remove_metrics_dir()


def post_worker_init(worker) -> None:
    """Start the app's background services in the worker, after gunicorn has forked."""
    app = getattr(worker, "wsgi", None)
    if isinstance(app, Flask):
        threads = server_threads(worker)
        if threads is not None:
            app.config["SERVER_THREADS"] = threads
        start_background(app)


def server_threads(worker) -> int | None:
    """How many requests the worker serves at once: what long-lived ones (monitor_app's
    WebSocket streams) must leave room within. None for an async worker (gevent's), whose
    requests each run in a greenlet and hold no thread, which that limit does not concern."""
    from gunicorn.workers.base_async import AsyncWorker

    if isinstance(worker, AsyncWorker):
        return None
    return worker.cfg.threads


def worker_exit(_server, worker) -> None:
    app = getattr(worker, "wsgi", None)
    if isinstance(app, Flask):
        stop_background(app)


class GunicornServer(BaseApplication):
    """A gunicorn master serving one already-configured Flask factory."""

    def __init__(self, factory: Callable[[], Flask], options: dict[str, Any]) -> None:
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        self.cfg.set("post_worker_init", post_worker_init)
        self.cfg.set("worker_exit", worker_exit)
        self.cfg.set("child_exit", child_exit)
        self.cfg.set("on_exit", on_exit)

    def load(self) -> Flask:
        return self.factory()


def serve(
    factory: Callable[[], Flask], host: str, port: int, workers: int = 1, threads: int = 4
) -> None:
    """Serve `factory()` with Vigil's threaded workers until SIGTERM/SIGINT."""
    GunicornServer(
        factory,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": WORKER_CLASS,
            "graceful_timeout": 15,
            "accesslog": None,
            "logconfig_dict": GUNICORN_LOGCONFIG,
            # One socket path per user: several Vigil servers on a machine would fight over it.
            "control_socket_disable": True,
        },
    ).run()


def run_cli(
    factory: Callable[[], Flask],
    host: str,
    port: int | None,
    default_port: int,
    workers: int = 1,
    threads: int = 4,
) -> None:
    """Validate settings (one clear line and exit 2 on a bad one), then serve.

    Without `--port`, the port comes from the PORT variable (as honcho and most PaaS set it).
    """
    from shared.config import ConfigError, Setting, load_settings, parse_port

    if workers > 1 and not os.environ.get(METRICS_DIR_VARIABLE):
        # The app, and prometheus_client with it, is already imported in single-process
        # mode: start again with the shared metrics folder set from the first line.
        prepare_metrics_dir()
        os.execv(sys.executable, sys.orig_argv)  # noqa: S606

    try:
        if port is None:
            port = load_settings((Setting("PORT", parse_port, default_port),))["PORT"]
        factory()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    serve(factory, host, port, workers, threads)
