"""A request's time limit on gevent's worker (shared/gevent_worker.py), and the way out of it
for a live stream.

Apart from the worker so the apps can lift the limit without importing gunicorn's gevent
worker; outside that worker there is no deadline and lifting it does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import gevent
from gevent.local import local

T = TypeVar("T")


class RequestTooSlowError(BaseException):
    """Raised in a request's greenlet at its time limit. A BaseException, like gevent's own
    Timeout: the app's error handlers must not turn it into an answer to a client that is
    not reading one; its context managers still close its session."""


# The deadline of the request this greenlet serves, if any.
_request = local()


def within(seconds: float, work: Callable[[], T]) -> T:
    """`work()`, or RequestTooSlowError once it has taken `seconds` (unless it lifts its
    deadline first)."""
    deadline = gevent.Timeout(seconds, RequestTooSlowError)
    _request.deadline = deadline
    try:
        with deadline:
            return work()
    finally:
        _request.deadline = None


def lift_deadline() -> None:
    """Let the request this greenlet serves take as long as it needs (a live stream, after
    its handshake). Nothing to do outside gevent's worker."""
    deadline = getattr(_request, "deadline", None)
    if deadline is not None:
        deadline.cancel()
