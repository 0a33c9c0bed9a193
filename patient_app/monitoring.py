"""MetricsService: turns the physiology models into samples and sends them on a schedule."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.background import BackgroundThread
from shared.logging import patient_uuid_var

from .exceptions import PatientNotFoundError, UnknownScenarioError
from .patients import SimulatedPatient
from .physiology import SCENARIOS

log = logging.getLogger(__name__)


class SampleSender(Protocol):
    """Where samples go: Kafka (producer.VitalsProducer) or an HL7 gateway (hl7_sender)."""

    transport: str  # the key of its report in /health

    def start(self) -> None: ...
    def stop(self, timeout: float = 10.0) -> None: ...
    def send_metrics(self, patient_uuid: uuid.UUID, sample: dict[str, Any]) -> None: ...
    def poll(self, timeout: float = 0.0) -> None: ...
    def health(self) -> dict[str, Any]: ...


class MetricsService(BackgroundThread):
    """Generates each patient's samples and sends them every `interval` seconds."""

    failure_message = "scheduler round failed"

    def __init__(
        self, patients: list[SimulatedPatient], sender: SampleSender, interval: float
    ) -> None:
        super().__init__("metrics-scheduler")
        self.patients = {p.uuid: p for p in patients}
        self.sender = sender
        self.interval = interval
        self._next_tick = 0.0

    # -- samples ---------------------------------------------------------------------------
    def patient(self, patient_uuid: uuid.UUID | None = None) -> SimulatedPatient:
        """The patient with this uuid; without one, the process's first patient."""
        if patient_uuid is None:
            return next(iter(self.patients.values()))
        try:
            return self.patients[patient_uuid]
        except KeyError:
            raise PatientNotFoundError() from None

    def generate_metrics(self, patient_uuid: uuid.UUID | None = None) -> dict[str, Any]:
        """Advance one patient's model by one interval and return the sample."""
        patient = self.patient(patient_uuid)
        with patient.lock:
            vitals = patient.physiology.step(self.interval)
        return {
            "patient_uuid": str(patient.uuid),
            "patient_name": patient.name,
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "pulse": vitals.pulse,
            "resp_rate": vitals.resp_rate,
            "bp": vitals.bp,
            "spo2": vitals.spo2,
            "temperature": vitals.temperature,
        }

    def send_metrics(self) -> int:
        """Generate and send one sample per patient. Returns how many were queued."""
        queued = 0
        for patient in self.patients.values():
            token = patient_uuid_var.set(str(patient.uuid))
            try:
                sample = self.generate_metrics(patient.uuid)
                self.sender.send_metrics(patient.uuid, sample)
                patient.latest = sample
                queued += 1
            except Exception:
                # One patient's failure must not stop the others' samples.
                log.exception("sending sample failed")
            finally:
                patient_uuid_var.reset(token)
        self.sender.poll(0)
        return queued

    def set_scenario(self, patient_uuid: uuid.UUID, scenario: str) -> SimulatedPatient:
        """Switch a patient's scenario; values drift toward it from where they are."""
        if scenario not in SCENARIOS:
            raise UnknownScenarioError(
                f"Unknown scenario {scenario!r}; expected one of {', '.join(SCENARIOS)}."
            )
        patient = self.patient(patient_uuid)
        with patient.lock:
            patient.physiology.set_scenario(scenario)
        log.info(
            "scenario switched", extra={"patient_uuid": str(patient_uuid), "scenario": scenario}
        )
        return patient

    # -- the scheduler (a background service, started after the server forks) --------------
    def start(self) -> None:
        """Start the sender, then the scheduler thread: one round every `interval` seconds."""
        self.sender.start()
        super().start()

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        log.info("monitoring stopped")
        self.sender.stop(timeout)

    def _setup(self) -> None:
        log.info(
            "monitoring started", extra={"patients": len(self.patients), "interval": self.interval}
        )
        self._next_tick = time.monotonic()

    def _work(self) -> float:
        self.send_metrics()
        return self._until_next_tick()

    def _failed(self, exc: Exception) -> float:
        return self._until_next_tick()

    def _until_next_tick(self) -> float:
        # Ticks are scheduled on a fixed grid so sending time does not accumulate as drift.
        self._next_tick += self.interval
        delay = self._next_tick - time.monotonic()
        if delay < 0:
            # Fell behind (e.g. a long GC or a paused process): skip, don't burst.
            self._next_tick = time.monotonic()
            delay = 0
        return delay
