"""Background services (scheduler, consumer) that live beside an app's HTTP workers.

An app factory only *registers* its services; they are started once the server process is
serving (gunicorn's `post_worker_init`, after the fork) and stopped on worker exit, so no
thread or Kafka client is ever handed across a fork.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
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


def idle_until_stopped() -> None:
    """Block until SIGINT or SIGTERM: a placeholder process for a service run elsewhere.

    honcho stops the whole system when one of its processes exits, so a process that has
    nothing to run (an external Kafka or Redis is configured) must stay alive.
    """
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    signal.sigwait(stop_signals)


def exec_embedded_or_idle(what: str, command: list[str] | None) -> None:
    """Become the embedded server `command` (exec), or idle when `what` runs elsewhere.

    `command` is None when the configuration names an external server.
    """
    if command is None:
        log.info(f"using an external {what}; no embedded one")
        idle_until_stopped()
        return
    log.info(f"starting the embedded {what} (memory only)", extra={"command": command[1:]})
    sys.stdout.flush()
    os.execv(command[0], command)  # noqa: S606
