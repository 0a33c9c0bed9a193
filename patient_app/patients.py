"""The simulated patients one process runs."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from .physiology import DEFAULT_DETERIORATION_S, PatientPhysiology

# Fixed namespace: the same name gives the same uuid on every machine and restart.
PATIENT_NAMESPACE = uuid.UUID("5b0f8d3e-2f41-4c55-9a57-6a1c3f0e9d21")


def patient_uuid_for(name: str) -> uuid.UUID:
    return uuid.uuid5(PATIENT_NAMESPACE, name)


@dataclass
class SimulatedPatient:
    uuid: uuid.UUID
    name: str
    physiology: PatientPhysiology
    latest: dict[str, Any] | None = None
    # The scheduler thread steps the model while requests switch its scenario.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def build_patients(
    name: str,
    count: int = 1,
    scenario: str = "normal",
    seed: int | None = None,
    patient_uuid: uuid.UUID | None = None,
    deterioration_s: float = DEFAULT_DETERIORATION_S,
) -> list[SimulatedPatient]:
    """One named patient, or `count` numbered ones ("<name> 001", …) for load."""
    if count == 1:
        return [
            SimulatedPatient(
                patient_uuid or patient_uuid_for(name),
                name,
                PatientPhysiology(scenario, seed, deterioration_s=deterioration_s),
            )
        ]
    patients = []
    for index in range(1, count + 1):
        numbered = f"{name} {index:0{len(str(count))}d}"
        patient_seed = None if seed is None else seed + index
        physiology = PatientPhysiology(scenario, patient_seed, deterioration_s=deterioration_s)
        patients.append(SimulatedPatient(patient_uuid_for(numbered), numbered, physiology))
    return patients
