"""Entry point of the worker: `celery -A worker_app.celery_app worker --pool threads`.

Besides the tasks, each worker migrates the schema when it is ready and runs the sweeper in
a thread of its own (several workers sweeping at once only re-queue the same ids; the
task skips what is already analysed).
"""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready, worker_shutdown

from shared.db import db, migrate
from worker_app import create_app
from worker_app.tasks import sweep_stale_notifications

log = logging.getLogger(__name__)

flask_app = create_app()
celery = flask_app.extensions["celery"]
_stop_sweeping = threading.Event()


def _sweep_forever() -> None:
    interval = flask_app.config["SWEEP_INTERVAL_SECONDS"]
    while not _stop_sweeping.wait(interval):
        try:
            with flask_app.app_context():
                sweep_stale_notifications()
        except Exception:
            log.exception("sweep failed; trying again next interval")


@worker_ready.connect
def _on_ready(**_kwargs: object) -> None:
    migrate(db.engine(flask_app))
    threading.Thread(target=_sweep_forever, name="sweeper", daemon=True).start()


@worker_shutdown.connect
def _on_shutdown(**_kwargs: object) -> None:
    _stop_sweeping.set()
