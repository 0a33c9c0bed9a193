"""MetricsService: steps the ward model, turns it into samples and sends them on a schedule."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.background import BackgroundThread
from shared.blood_pressure import format_bp
from shared.logging import patient_uuid_var

from .exceptions import PatientNotFoundError, UnknownScenarioError
from .patients import SimulatedPatient
from .scenarios import SCENARIOS

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
        self.ward = patients[0].ward
        # In bed order, the order of the ward's arrays.
        self._beds = sorted(patients, key=lambda p: p.bed)
        if any(p.ward is not self.ward for p in patients) or [p.bed for p in self._beds] != list(
            range(len(self.ward))
        ):
            raise ValueError("the patients must be the beds of one ward, each bed once")
        # The scheduler thread steps the ward while requests switch scenarios.
        self._ward_lock = threading.Lock()

    # -- samples ---------------------------------------------------------------------------
    def patient(self, patient_uuid: uuid.UUID | None = None) -> SimulatedPatient:
        """The patient with this uuid; without one, the process's first patient."""
        if patient_uuid is None:
            return next(iter(self.patients.values()))
        try:
            return self.patients[patient_uuid]
        except KeyError:
            raise PatientNotFoundError() from None

    def generate_samples(self) -> list[dict[str, Any]]:
        """Advance the ward by one interval: every patient's sample, in bed order."""
        with self._ward_lock:
            vitals = self.ward.step(self.interval)
        # The whole ward is sampled at one instant, so one clock reading serves every sample.
        timestamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        return [
            {
                "patient_uuid": str(patient.uuid),
                "patient_name": patient.name,
                "timestamp": timestamp,
                "pulse": pulse,
                "resp_rate": resp_rate,
                "bp": format_bp(systolic, diastolic),
                "spo2": spo2,
                "temperature": temperature,
            }
            for patient, (pulse, resp_rate, systolic, diastolic, spo2, temperature) in zip(
                self._beds, vitals.rows(), strict=True
            )
        ]

    def send_metrics(self) -> int:
        """Step the ward and send one sample per patient. Returns how many were queued."""
        queued = 0
        for patient, sample in zip(self._beds, self.generate_samples(), strict=True):
            token = patient_uuid_var.set(sample["patient_uuid"])
            try:
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
        with self._ward_lock:
            self.ward.set_scenario(patient.bed, scenario)
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
