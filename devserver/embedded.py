"""Run an embedded server in the foreground for honcho, or stand idle when one runs elsewhere."""

from __future__ import annotations

import logging
import os
import signal
import sys

log = logging.getLogger(__name__)


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
    log.info(f"starting the embedded {what}", extra={"command": command[1:]})
    sys.stdout.flush()
    os.execv(command[0], command)  # noqa: S606
