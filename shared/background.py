"""BackgroundThread: a loop in a daemon thread of its own, with a stop event and a clean join.

Each service that runs beside an app's workers (the consumer, the live event hub, the
simulator's scheduler, the worker's sweeper) subclasses it and says what one unit of work is;
the loop logs a failed unit and carries on. Subclasses fit `shared.lifecycle`'s
`BackgroundService`.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)

# Seconds to wait before each retry of something that keeps failing; the last step repeats.
BACKOFF_SECONDS = (0.5, 1, 2, 5)


def backoff(attempt: int) -> float:
    """The wait before retry number `attempt` (1 after the first failure)."""
    return BACKOFF_SECONDS[min(max(attempt, 1), len(BACKOFF_SECONDS)) - 1]


class StopRequested(Exception):  # noqa: N818
    """Raised inside a unit of work when shutdown interrupts it; the loop then ends quietly."""


class BackgroundThread:
    """Runs `_work` in a loop in its own thread until `stop` is called.

    Subclasses implement `_work`, which returns the seconds to wait before the next unit, and
    may override `_setup` (in the thread, before the loop; StopRequested there ends the thread
    without `_teardown`), `_failed` (after a unit raised; returns the wait before the next)
    and `_teardown` (in the thread, after the loop).
    """

    # Seconds before the first unit of work, and after a failed one.
    first_delay = 0.0
    retry_delay = 1.0
    # Logged, with the traceback, when a unit of work raises.
    failure_message = "background work failed; carrying on"

    def __init__(self, name: str) -> None:
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread; does nothing while it runs."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the loop to finish its unit of work and join the thread for up to `timeout`."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning(
                    "background thread did not stop in time",
                    extra={"service_name": self.name, "timeout": timeout},
                )

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._setup()
        except StopRequested:
            return
        try:
            delay = self.first_delay
            while not self._stop.wait(delay):
                try:
                    delay = self._work()
                except StopRequested:
                    break
                except Exception as exc:
                    # One failed unit must not end the service: log it and carry on, under
                    # the logger of the subclass's module, where the failure belongs.
                    logging.getLogger(type(self).__module__).exception(self.failure_message)
                    delay = self._failed(exc)
        finally:
            self._teardown()

    def _setup(self) -> None:
        """Run in the thread before the first unit of work."""

    def _work(self) -> float:
        """One unit of work; returns the seconds to wait before the next."""
        raise NotImplementedError

    def _failed(self, exc: Exception) -> float:
        """Called after `_work` raised `exc`; returns the seconds to wait before the next."""
        return self.retry_delay

    def _teardown(self) -> None:
        """Run in the thread after the loop ends."""
