"""The simulated patients one process runs."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from shared.patient_ids import derived_uuid, identifier_uuid

from .oru import HospitalIdentifier
from .scenarios import DEFAULT_DETERIORATION_S
from .ward import WardPhysiology

log = logging.getLogger(__name__)


def patient_uuid_for(name: str, secret: str) -> uuid.UUID:
    """The uuid of the patient called `name`: the same on every restart under one secret."""
    return derived_uuid(secret, name)


def _uuid_for(name: str, secret: str | None) -> uuid.UUID:
    return uuid.uuid4() if secret is None else patient_uuid_for(name, secret)


@dataclass
class SimulatedPatient:
    uuid: uuid.UUID
    name: str
    # The process's patients share one ward model, stepped at once; this one is in `bed`.
    ward: WardPhysiology
    bed: int
    latest: dict[str, Any] | None = None
    # Over HL7, the MRN the hospital knows the patient by (PID-3).
    identifier: HospitalIdentifier | None = None

    @property
    def scenario(self) -> str:
        """The scenario the patient's vitals drift toward."""
        return self.ward.scenario(self.bed)


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
    # A ward of `count` beds in one seeded model: the same seed gives the same ward.
    ward = WardPhysiology(count, scenario, seed, deterioration_s=deterioration_s)
    if count == 1:
        return [SimulatedPatient(patient_uuid or _uuid_for(name, id_secret), name, ward, 0)]
    patients = []
    for bed in range(count):
        numbered = f"{name} {bed + 1:0{len(str(count))}d}"
        patients.append(SimulatedPatient(_uuid_for(numbered, id_secret), numbered, ward, bed))
    return patients


def give_hospital_identifiers(
    patients: list[SimulatedPatient], authority: str, secret: str | None
) -> None:
    """Give each patient an MRN, for the HL7 path, and the uuid gateway_app will derive from it,
    so the simulator and the rest of Vigil name a patient alike.

    The MRN comes from the patient's own uuid, so a restart keeps it. Without a secret the
    gateway's uuids (under its own) cannot be known here, and the patients keep theirs.
    """
    for patient in patients:
        identifier = HospitalIdentifier(authority, f"SIM-{patient.uuid.hex[:12].upper()}")
        patient.identifier = identifier
        if secret is not None:
            patient.uuid = identifier_uuid(identifier.system, identifier.value, secret)
