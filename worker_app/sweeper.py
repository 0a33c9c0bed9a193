"""Sweeper: re-queues the notifications a dead worker or a lost queue left behind."""

from __future__ import annotations

from flask import Flask

from shared.background import BackgroundThread
from worker_app.tasks import sweep_stale_notifications


class Sweeper(BackgroundThread):
    """Sweeps every `SWEEP_INTERVAL_SECONDS`, first one interval after it starts."""

    failure_message = "sweep failed; trying again next interval"

    def __init__(self, app: Flask) -> None:
        super().__init__("sweeper")
        self.app = app
        self.interval: float = app.config["SWEEP_INTERVAL_SECONDS"]
        self.first_delay = self.retry_delay = self.interval

    def _work(self) -> float:
        # An app context per sweep, not one for the thread's life.
        with self.app.app_context():
            sweep_stale_notifications()
        return self.interval
