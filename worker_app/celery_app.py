"""Entry point of the worker: `celery -A worker_app.celery_app worker --pool threads`.

Besides the tasks, each worker migrates the schema when it is ready and runs the sweeper in
a thread of its own (several workers sweeping at once only re-queue the same ids; the
task skips what is already analysed), and the alarm watch in another (several workers
watching at once escalate each alarm once a step: worker_app/alarm_watch.py).
"""

from __future__ import annotations

import logging

from celery.signals import worker_ready, worker_shutdown
from prometheus_client import start_http_server

from shared.db import db, migrate
from worker_app import create_app
from worker_app.alarm_watch import AlarmWatch
from worker_app.sweeper import Sweeper

log = logging.getLogger(__name__)

flask_app = create_app()
celery = flask_app.extensions["celery"]
sweeper = Sweeper(flask_app)
alarm_watch = AlarmWatch(flask_app)


def _serve_metrics() -> None:
    """`/metrics` for Prometheus; a port already taken costs the metrics, not the worker."""
    host, port = flask_app.config["METRICS_HOST"], flask_app.config["METRICS_PORT"]
    if not port:
        return
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        log.warning("metrics endpoint not started", extra={"port": port, "error": str(exc)})
    else:
        log.info("metrics endpoint started", extra={"url": f"http://{host}:{port}/metrics"})


@worker_ready.connect
def _on_ready(**_kwargs: object) -> None:
    migrate(db.engine(flask_app))
    _serve_metrics()
    sweeper.start()
    alarm_watch.start()


@worker_shutdown.connect
def _on_shutdown(**_kwargs: object) -> None:
    sweeper.stop()
    alarm_watch.stop()
