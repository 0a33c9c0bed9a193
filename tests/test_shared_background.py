"""BackgroundThread: the loop carries on after a failed unit, stops cleanly, and backs off."""

from __future__ import annotations

import logging
import threading

import pytest

from devserver.processes import wait_until
from shared.background import BACKOFF_SECONDS, BackgroundThread, StopRequested, backoff


@pytest.mark.parametrize(
    ("attempt", "seconds"), [(1, 0.5), (2, 1), (3, 2), (4, 5), (5, 5), (100, 5)]
)
def test_backoff_grows_then_repeats_its_last_step(attempt: int, seconds: float) -> None:
    assert backoff(attempt) == seconds
    assert backoff(attempt) in BACKOFF_SECONDS


class Counter(BackgroundThread):
    """Counts its units; the first one fails, and one started while `hold` is set blocks."""

    retry_delay = 0.01
    failure_message = "counting failed"

    def __init__(self) -> None:
        super().__init__("counter")
        self.units = 0
        self.failures: list[Exception] = []
        self.torn_down = threading.Event()
        self.hold = threading.Event()
        self.held = threading.Event()

    def _work(self) -> float:
        self.units += 1
        if self.units == 1:
            raise ValueError("first unit fails")
        if self.hold.is_set():
            self.held.set()
            while self.hold.is_set():
                self.torn_down.wait(0.01)
        return 0.01

    def _failed(self, exc: Exception) -> float:
        self.failures.append(exc)
        return super()._failed(exc)

    def _teardown(self) -> None:
        self.torn_down.set()


def test_a_failed_unit_is_logged_and_the_loop_carries_on(caplog) -> None:
    service = Counter()
    with caplog.at_level(logging.ERROR, logger=__name__):
        service.start()
        wait_until(lambda: service.units >= 3, timeout=5)
    service.stop(timeout=5)

    assert [str(exc) for exc in service.failures] == ["first unit fails"]
    assert [(r.name, r.message) for r in caplog.records] == [(__name__, "counting failed")]
    assert service.torn_down.is_set()
    assert not service.running


def test_start_is_idempotent_and_the_thread_is_named() -> None:
    service = Counter()
    service.start()
    thread = service._thread
    service.start()
    try:
        assert service._thread is thread
        assert thread.name == "counter" and thread.daemon
        assert service.running
    finally:
        service.stop(timeout=5)


def test_a_thread_that_does_not_stop_in_time_is_reported(caplog) -> None:
    service = Counter()
    service.start()
    service.hold.set()
    assert service.held.wait(5)
    with caplog.at_level(logging.WARNING, logger="shared.background"):
        service.stop(timeout=0.05)
    assert "background thread did not stop in time" in [r.message for r in caplog.records]
    assert service.running
    service.hold.clear()
    service.stop(timeout=5)
    assert not service.running


class StopsWhileSettingUp(BackgroundThread):
    def __init__(self) -> None:
        super().__init__("stops-early")
        self.worked = self.torn_down = False

    def _setup(self) -> None:
        raise StopRequested

    def _work(self) -> float:
        self.worked = True
        return 0.0

    def _teardown(self) -> None:
        self.torn_down = True


def test_stop_requested_while_setting_up_ends_the_thread_before_the_loop() -> None:
    service = StopsWhileSettingUp()
    service.start()
    service.stop(timeout=5)
    assert not service.running
    assert not service.worked and not service.torn_down
