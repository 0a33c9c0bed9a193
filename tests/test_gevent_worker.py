"""The gevent worker's time limit on a request (shared/request_deadline.py), in one process:
gevent's own sleep stands for a client that sends or reads slowly."""

from __future__ import annotations

import time

import gevent
import pytest
from flask import Flask

from shared.request_deadline import RequestTooSlowError, lift_deadline, within


def test_a_request_that_finishes_in_time_is_answered():
    assert within(5.0, lambda: "answered") == "answered"


def test_a_request_still_waiting_at_its_limit_is_cut_off():
    started = time.monotonic()
    with pytest.raises(RequestTooSlowError):
        within(0.05, lambda: gevent.sleep(30))
    assert time.monotonic() - started < 5


def test_the_limit_is_not_turned_into_an_answer_by_the_apps_error_handlers():
    """Flask answers any Exception with a 500; the cut-off must reach the worker, which closes
    the connection, and the request's teardown must still run (its session closed)."""
    app = Flask(__name__)
    torn_down = []

    @app.get("/slow")
    def slow():
        gevent.sleep(30)
        return "never"

    @app.errorhandler(Exception)
    def answer(error):
        return "an answer", 500

    app.teardown_request(lambda error: torn_down.append(True))
    with pytest.raises(RequestTooSlowError):
        within(0.05, lambda: app.test_client().get("/slow"))
    assert torn_down == [True]


def test_a_request_that_lifts_its_deadline_takes_as_long_as_it_needs():
    """A live stream, once signed in and upgraded."""

    def stream() -> str:
        lift_deadline()
        gevent.sleep(0.2)
        return "streamed"

    assert within(0.05, stream) == "streamed"


def test_lifting_outside_the_gevent_worker_does_nothing():
    lift_deadline()


def test_the_next_request_on_the_greenlet_has_its_own_deadline():
    within(5.0, lift_deadline)
    with pytest.raises(RequestTooSlowError):
        within(0.05, lambda: gevent.sleep(30))


def test_connections_whose_requests_never_wait_take_turns(monkeypatch):
    """Two keep-alive clients, each with its next request already in, served by code that
    never yields (SQLite's calls): each request is followed by the other's, not by its own
    next one until its client runs dry."""
    from gunicorn.workers.ggevent import GeventWorker

    from shared.gevent_worker import BoundedGeventWorker

    served: list[str] = []
    monkeypatch.setattr(
        GeventWorker, "handle_request", lambda self, name, req, sock, addr: served.append(req)
    )
    worker = object.__new__(BoundedGeventWorker)  # its serving alone, without gunicorn's set-up

    def client(name: str) -> None:
        for _ in range(4):
            worker.handle_request("listener", name, None, None)

    gevent.joinall([gevent.spawn(client, "a"), gevent.spawn(client, "b")], timeout=10)
    assert served == ["a", "b"] * 4
