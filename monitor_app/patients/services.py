"""Queries over patients. Functions take the caller's session and never commit."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from monitor_app.metrics.services import latest_samples
from monitor_app.patients.listing import ListedPatient
from shared.models import Patient, PatientMetric


@dataclass(frozen=True)
class PatientOverview:
    """A patient with their newest sample and, when asked for, how many samples they have."""

    patient: Patient | ListedPatient
    latest: PatientMetric | None
    sample_count: int | None = None


# Built once (SQLAlchemy caches their compiled forms): building a statement per request
# costs about as much as running it.
PATIENT_BY_UUID = select(Patient).where(Patient.uuid == bindparam("uuid"))


def find_patient(session: Session, patient_uuid: uuid.UUID) -> Patient | None:
    """The patient with this UUID, or None."""
    return session.scalar(PATIENT_BY_UUID, {"uuid": patient_uuid})


# Of the table's columns (a Core statement): the routes that only need the patient's key
# skip loading the row (its alarm episodes are JSON) as an ORM object.
PATIENT_ID = select(Patient.__table__.c.id).where(Patient.__table__.c.uuid == bindparam("uuid"))


def find_patient_id(session: Session, patient_uuid: uuid.UUID) -> int | None:
    """The id of the patient with this UUID, or None."""
    return session.scalar(PATIENT_ID, {"uuid": patient_uuid})


def unknown_patients(
    session: Session, patient_uuids: Collection[uuid.UUID]
) -> frozenset[uuid.UUID]:
    """Those of `patient_uuids` that no patient has."""
    known = session.scalars(select(Patient.uuid).where(Patient.uuid.in_(patient_uuids)))
    return frozenset(patient_uuids) - frozenset(known)


def newest_credible(max_clock_skew: timedelta) -> datetime:
    """The latest timestamp a sample may have now and still count as a patient's newest."""
    return datetime.now(UTC) + max_clock_skew


def list_patients(
    session: Session, patients: Sequence[ListedPatient], *, max_clock_skew: timedelta
) -> list[PatientOverview]:
    """A page of patients, each with their newest sample, read in one query."""
    latest = latest_samples(
        session, [patient.id for patient in patients], not_after=newest_credible(max_clock_skew)
    )
    return [PatientOverview(patient, latest.get(patient.id)) for patient in patients]


def patient_detail(
    session: Session, patient_uuid: uuid.UUID, *, max_clock_skew: timedelta
) -> PatientOverview | None:
    """One patient with their newest sample and sample count, or None."""
    patient = find_patient(session, patient_uuid)
    if patient is None:
        return None
    newest = newest_credible(max_clock_skew)
    return PatientOverview(
        patient,
        latest_samples(session, [patient.id], not_after=newest).get(patient.id),
        # Kept by data_app as samples are stored and removed: no count of their history.
        patient.sample_count,
    )
