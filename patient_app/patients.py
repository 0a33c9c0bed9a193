"""The simulated patients one process runs."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from .physiology import DEFAULT_DETERIORATION_S, PatientPhysiology

log = logging.getLogger(__name__)


def patient_uuid_for(name: str, secret: str) -> uuid.UUID:
    """The uuid of the patient called `name`: the same on every restart under one secret.

    An HMAC, not a uuid5 of the name: a uuid5's namespace is in the source, so whoever knew a
    patient's name knew their id. Shaped as a version 4 uuid, which to anyone without the
    secret it is.
    """
    digest = hmac.new(secret.encode(), name.encode(), hashlib.sha256).digest()
    return uuid.UUID(bytes=digest[:16], version=4)


def _uuid_for(name: str, secret: str | None) -> uuid.UUID:
    return uuid.uuid4() if secret is None else patient_uuid_for(name, secret)


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
    id_secret: str | None = None,
) -> list[SimulatedPatient]:
    """One named patient, or `count` numbered ones ("<name> 001", …) for load.

    Their uuids come from their names under `id_secret`; without one, they are random and a
    restart makes new patients.
    """
    if id_secret is None and patient_uuid is None:
        log.warning(
            "no patient id secret: the patients get random uuids, new at every restart "
            "(set PATIENT_ID_SECRET, or run python -m patient_app.id_secret var/patient-id.secret)"
        )
    if count == 1:
        return [
            SimulatedPatient(
                patient_uuid or _uuid_for(name, id_secret),
                name,
                PatientPhysiology(scenario, seed, deterioration_s=deterioration_s),
            )
        ]
    patients = []
    for index in range(1, count + 1):
        numbered = f"{name} {index:0{len(str(count))}d}"
        patient_seed = None if seed is None else seed + index
        physiology = PatientPhysiology(scenario, patient_seed, deterioration_s=deterioration_s)
        patients.append(SimulatedPatient(_uuid_for(numbered, id_secret), numbered, physiology))
    return patients
