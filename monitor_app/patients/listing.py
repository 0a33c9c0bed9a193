"""A page of the patients list, cached while samples flow.

Which patients a page holds changes only when a patient is added, so the page is cached under
the PATIENTS generation, which data_app bumps only for a batch that brought a new patient.
Each patient's newest sample changes every second and is read afresh (one query a page):
cached with the page, it made every stored batch invalidate the list, which then never hit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor_app.caching import cached_value
from shared.events import PATIENTS
from shared.models import Patient


@dataclass(frozen=True, slots=True)
class ListedPatient:
    """What the list shows of a patient, besides their newest sample."""

    id: int
    uuid: uuid.UUID
    name: str
    created_at: datetime

    def to_json(self) -> list[Any]:
        return [self.id, str(self.uuid), self.name, self.created_at.isoformat()]

    @classmethod
    def from_json(cls, value: Any) -> ListedPatient:
        """Raises ValueError or TypeError for anything but what `to_json` made."""
        patient_id, patient_uuid, name, created_at = value
        if not (
            isinstance(patient_id, int) and isinstance(patient_uuid, str) and isinstance(name, str)
        ):
            raise TypeError("not a listed patient")
        created = datetime.fromisoformat(created_at)
        if created.tzinfo is None:
            raise ValueError("a listed patient's time has a zone")
        return cls(patient_id, uuid.UUID(patient_uuid), name, created)


@dataclass(frozen=True, slots=True)
class PatientPage:
    """One page of patients by name, and how many patients there are in all."""

    item_count: int
    patients: tuple[ListedPatient, ...]

    def to_json(self) -> dict[str, Any]:
        return {"count": self.item_count, "patients": [p.to_json() for p in self.patients]}

    @classmethod
    def from_json(cls, value: Any) -> PatientPage | None:
        """The page stored; None for any other value found under its key."""
        try:
            count = value["count"]
            patients = tuple(ListedPatient.from_json(p) for p in value["patients"])
        except (KeyError, TypeError, ValueError):
            return None
        if not isinstance(count, int) or isinstance(count, bool) or count < len(patients):
            return None
        return cls(count, patients)


def read_page(session: Session, *, offset: int, limit: int) -> PatientPage:
    count = session.scalar(select(func.count()).select_from(Patient)) or 0
    if offset >= count:  # past the last page: no query with an offset the database refuses
        return PatientPage(count, ())
    query = (
        select(Patient.id, Patient.uuid, Patient.name, Patient.created_at)
        .order_by(Patient.name, Patient.uuid)
        .offset(offset)
        .limit(limit)
    )
    return PatientPage(count, tuple(ListedPatient(*row) for row in session.execute(query)))


def patient_page(session: Session, *, offset: int, limit: int) -> tuple[PatientPage, bool]:
    """The page at `offset`, from the cache when it holds it; and whether it did."""
    return cached_value(
        PATIENTS,
        f"page:{offset}:{limit}",
        lambda: read_page(session, offset=offset, limit=limit),
        dump=PatientPage.to_json,
        load=PatientPage.from_json,
    )
