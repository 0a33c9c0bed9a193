"""A patient's alarm limits: the defaults merged with what clinicians changed. Functions
take the caller's session and never commit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.alarm_limits import Bound, Limits, Parameter, column_name, effective_limits
from shared.db import utcnow
from shared.models import AlarmLimits, Patient

# What a client asks to change: some bounds of some parameters.
Changes = dict[Parameter, dict[Bound, float]]


@dataclass(frozen=True, slots=True)
class EffectiveLimits:
    """Every parameter's limits for one patient, and who last changed them (None: never)."""

    patient_uuid: uuid.UUID
    pulse: Limits
    resp_rate: Limits
    spo2: Limits
    systolic: Limits
    temperature: Limits
    reason: str | None = None
    updated_by: uuid.UUID | None = None
    updated_at: datetime | None = None

    def of(self, parameter: Parameter) -> Limits:
        return getattr(self, parameter.value)


class InconsistentLimitsError(ValueError):
    """The limits a change would leave do not hold together; `errors` says where."""

    def __init__(self, errors: dict[str, dict[str, list[str]]]) -> None:
        super().__init__("inconsistent alarm limits")
        self.errors = errors


def patient_limits(session: Session, patient_id: int, patient_uuid: uuid.UUID) -> EffectiveLimits:
    """The limits that apply to the patient now (the read needs only their keys)."""
    return _effective(patient_uuid, session.get(AlarmLimits, patient_id))


def change_limits(
    session: Session, patient: Patient, changes: Changes, reason: str, user_id: uuid.UUID
) -> EffectiveLimits:
    """Apply `changes` to the patient's limits; raises InconsistentLimitsError, changing
    nothing, when the limits they would leave contradict each other."""
    # Changes to one patient's limits in turn (PostgreSQL; SQLite has one writer anyway), so
    # two that each hold with the old limits cannot together leave low above high.
    session.execute(select(Patient.id).where(Patient.id == patient.id).with_for_update())
    row = session.get(AlarmLimits, patient.id)
    current = _effective(patient.uuid, row)
    problems = {
        parameter.value: {bound.value: [message] for bound, message in found.items()}
        for parameter, bounds in changes.items()
        if (found := current.of(parameter).with_bounds(bounds).problems())
    }
    if problems:
        raise InconsistentLimitsError(problems)
    if row is None:
        row = AlarmLimits(patient_id=patient.id)
        session.add(row)
    for parameter, bounds in changes.items():
        for bound, value in bounds.items():
            setattr(row, column_name(parameter, bound), value)
    row.reason, row.updated_by, row.updated_at = reason, user_id, utcnow()
    session.flush()
    return _effective(patient.uuid, row)


def _effective(patient_uuid: uuid.UUID, row: AlarmLimits | None) -> EffectiveLimits:
    limits = {parameter.value: limits for parameter, limits in effective_limits(row).items()}
    if row is None:
        return EffectiveLimits(patient_uuid, **limits)
    return EffectiveLimits(
        patient_uuid,
        **limits,
        reason=row.reason,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )
