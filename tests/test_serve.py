"""What the gunicorn hooks tell an app about the worker serving it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from gunicorn.config import Config
from gunicorn.workers.base import Worker
from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.sync import SyncWorker

from monitor_app.live.seats import seat_limits
from shared.buffering_worker import BufferingThreadWorker
from shared.serve import server_threads

LIMITS = {"WS_MAX_CLIENTS": 1000, "WS_MAX_CLIENTS_PER_USER": 1000, "WS_CLINICIAN_SEATS": 0}


@contextmanager
def worker(kind: type, threads: int) -> Iterator[Worker]:
    """A worker of `kind` as the master makes it, before it forks and runs."""
    cfg = Config()
    cfg.set("threads", threads)
    made = kind(0, os.getpid(), [], None, 30, cfg, None)
    try:
        yield made
    finally:
        made.tmp.close()  # its heartbeat file


@pytest.mark.parametrize(("kind", "threads"), [(BufferingThreadWorker, 16), (SyncWorker, 1)])
def test_a_worker_whose_requests_hold_threads_says_how_many(kind: type, threads: int) -> None:
    with worker(kind, threads) as made:
        served = server_threads(made)

    assert served == threads
    # A stream holds one of them: half stay for HTTP requests (none of a sync worker's one).
    assert seat_limits({**LIMITS, "SERVER_THREADS": served}).total == threads // 2


def test_an_async_worker_leaves_the_seats_to_the_settings() -> None:
    """gevent's worker (an AsyncWorker) runs each request in a greenlet: a stream holds no
    thread, so its one "thread" must not lower the seats to none."""
    with worker(AsyncWorker, 1) as made:
        assert server_threads(made) is None
    assert seat_limits(LIMITS).total == 1000
