"""Background services (scheduler, consumer) that live beside an app's HTTP workers.

An app factory only *registers* its services; they are started once the server process is
serving (gunicorn's `post_worker_init`, after the fork) and stopped on worker exit, so no
thread or Kafka client is ever handed across a fork.
"""

from __future__ import annotations

import logging
from typing import Protocol

from flask import Flask

log = logging.getLogger(__name__)

_KEY = "vigil.background"


class BackgroundService(Protocol):
    def start(self) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...


def register_background(app: Flask, name: str, service: BackgroundService) -> None:
    app.extensions.setdefault(_KEY, {})[name] = service


def background_service(app: Flask, name: str) -> BackgroundService:
    return app.extensions[_KEY][name]


def start_background(app: Flask) -> None:
    """Start every registered service of `app`, in registration order."""
    for name, service in app.extensions.get(_KEY, {}).items():
        log.info("starting background service", extra={"service_name": name})
        service.start()


def stop_background(app: Flask, timeout: float = 10.0) -> None:
    """Stop every registered service of `app`, newest first; errors are logged, not raised."""
    for name, service in reversed(app.extensions.get(_KEY, {}).items()):
        try:
            service.stop(timeout)
        except Exception:
            log.exception("background service failed to stop", extra={"service_name": name})
        else:
            log.info("stopped background service", extra={"service_name": name})
