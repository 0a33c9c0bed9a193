"""Queries behind the FHIR API. Functions take the caller's session and never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from monitor_app.fhir.dates import Bound
from shared.models import Patient, PatientMetric


@dataclass(frozen=True, slots=True)
class StoredSample:
    """One stored sample, as the Observations built from it need it."""

    id: int
    patient_uuid: uuid.UUID
    timestamp: datetime
    pulse: int
    resp_rate: int
    systolic: int
    diastolic: int
    spo2: int
    temperature: float
    news2_score: int | None
    news2_band: str | None


_COLUMNS = (
    PatientMetric.id,
    Patient.uuid,
    PatientMetric.timestamp,
    PatientMetric.pulse,
    PatientMetric.resp_rate,
    PatientMetric.systolic,
    PatientMetric.diastolic,
    PatientMetric.spo2,
    PatientMetric.temperature,
    PatientMetric.news2_score,
    PatientMetric.news2_band,
)


def _samples() -> Select:
    return select(*_COLUMNS).join(Patient, Patient.id == PatientMetric.patient_id)


def patients_matching(
    session: Session,
    *,
    uuids: Sequence[uuid.UUID] | None,
    identifier: tuple[str | None, str] | None,
    limit: int,
    offset: int = 0,
) -> tuple[list[Patient], int]:
    """Up to `limit` patients with one of these uuids and this identifier ((system, value);
    a None system matches any, '' only none), oldest first, after the first `offset`; and how
    many match in all."""
    conditions: list[ColumnElement[bool]] = []
    if uuids is not None:
        conditions.append(Patient.uuid.in_(uuids))
    if identifier is not None:
        system, value = identifier
        conditions.append(Patient.identifier_value == value)
        if system == "":
            conditions.append(Patient.identifier_system.is_(None))
        elif system is not None:
            conditions.append(Patient.identifier_system == system)
    total = session.scalar(select(func.count()).select_from(Patient).where(*conditions)) or 0
    query = select(Patient).where(*conditions).order_by(Patient.id).offset(offset).limit(limit)
    return list(session.scalars(query)), total


def _window(bounds: Sequence[Bound]) -> list[ColumnElement[bool]]:
    return [bound.condition(PatientMetric.timestamp) for bound in bounds]


def count_samples(session: Session, patient_id: int, bounds: Sequence[Bound]) -> tuple[int, int]:
    """How many of a patient's samples fall in the window, and how many of them are scored."""
    query = select(func.count(), func.count(PatientMetric.news2_score)).where(
        PatientMetric.patient_id == patient_id, *_window(bounds)
    )
    every, scored = session.execute(query).one()
    return every, scored


def sample_batch(
    session: Session,
    patient_id: int,
    bounds: Sequence[Bound],
    *,
    newest_first: bool,
    start: datetime | None,
    include_start: bool,
    limit: int,
) -> list[StoredSample]:
    """Up to `limit` of a patient's samples in the window, in order, from `start` on: one
    step along the (patient_id, timestamp) index, however long the history."""
    column = PatientMetric.timestamp
    query = _samples().where(PatientMetric.patient_id == patient_id, *_window(bounds))
    if start is not None:
        if newest_first:
            query = query.where(column <= start if include_start else column < start)
        else:
            query = query.where(column >= start if include_start else column > start)
    order = column.desc() if newest_first else column.asc()
    return [StoredSample(*row) for row in session.execute(query.order_by(order).limit(limit))]


def sample_by_id(session: Session, sample_id: int) -> StoredSample | None:
    """The sample with this row id, or None."""
    row = session.execute(_samples().where(PatientMetric.id == sample_id)).one_or_none()
    return None if row is None else StoredSample(*row)
