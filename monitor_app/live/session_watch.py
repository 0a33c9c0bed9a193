"""The credentials of a worker's live streams, re-checked together.

A stream lasts for hours, so it re-checks the session or token it was opened with every
WS_SESSION_CHECK_SECONDS. Each stream making its own query was 200 queries a second at a
thousand streams; here one round of queries answers for them all.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from flask import Flask, current_app

from monitor_app.auth.authenticate import Credential, credentials_holding


class SessionWatch:
    """Which watched credentials no longer held at the last round of checks.

    The round runs in the stream that finds it due (so a worker needs no thread of its own
    for it) while the others go on with the last answer."""

    def __init__(self) -> None:
        self._watched: Counter[Credential] = Counter()
        self._ended: frozenset[Credential] = frozenset()
        self._checked_at = time.monotonic()
        self._lock = threading.Lock()
        self._checking = threading.Lock()

    def watch(self, credential: Credential) -> None:
        with self._lock:
            self._watched[credential] += 1

    def unwatch(self, credential: Credential) -> None:
        with self._lock:
            self._watched[credential] -= 1
            if self._watched[credential] <= 0:
                del self._watched[credential]

    def holds(self, credential: Credential, every: float) -> bool:
        """Whether `credential` held at the last round, first making the round if the last
        is `every` seconds old. Raises SQLAlchemyError if the round could not be made: the
        stream that tried is told, and the next to find it due tries again."""
        if time.monotonic() - self._checked_at >= every and self._checking.acquire(False):
            try:
                if time.monotonic() - self._checked_at >= every:
                    self._check()
            finally:
                self._checking.release()
        return credential not in self._ended

    def _check(self) -> None:
        with self._lock:
            credentials = frozenset(self._watched)
        self._ended = credentials - credentials_holding(credentials)
        self._checked_at = time.monotonic()


def init_session_watch(app: Flask) -> None:
    app.extensions["vigil.session_watch"] = SessionWatch()


def session_watch() -> SessionWatch:
    return current_app.extensions["vigil.session_watch"]
