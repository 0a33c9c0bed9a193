"""Responding to alarms: list them, acknowledge one, silence one for a while. Functions take
the caller's session and never commit; the caller publishes the returned views after it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from shared.alarm_limits import effective_limits
from shared.alarm_records import alarm_record, dump_episodes, load_episodes
from shared.alarms import AlarmEngine, Condition
from shared.identity import User
from shared.models import OPEN, Alarm, AlarmLimits, AlarmState, Patient


@dataclass(frozen=True, slots=True)
class AlarmFilters:
    """What a list asks for; None: any. `state` "open" means active or acknowledged."""

    state: str | None = None
    priority: str | None = None
    kind: str | None = None
    patient_uuid: uuid.UUID | None = None


class AlarmNotFoundError(LookupError):
    pass


class AlarmEndedError(RuntimeError):
    """The alarm is resolved: there is nothing left to acknowledge or silence."""


class UnknownAccountError(RuntimeError):
    """The caller's account is not in this database, so an acknowledgement could not say who."""


@dataclass(frozen=True, slots=True)
class Response:
    """An alarm after a response, and the live events it makes: `acknowledged`, `silenced`,
    and `resolved` when acknowledging a latched alarm that had recovered ends it."""

    record: dict[str, Any]  # as alarm_record gives it
    events: tuple[str, ...]


def _listed(filters: AlarmFilters) -> Select:
    query = select(Alarm, Patient.uuid, Patient.name).join(Patient, Patient.id == Alarm.patient_id)
    if filters.state == "open":
        query = query.where(OPEN)
    elif filters.state is not None:
        query = query.where(Alarm.state == filters.state)
    if filters.priority is not None:
        query = query.where(Alarm.priority == filters.priority)
    if filters.kind is not None:
        query = query.where(Alarm.kind == filters.kind)
    if filters.patient_uuid is not None:
        query = query.where(Patient.uuid == filters.patient_uuid)
    return query


def count_alarms(session: Session, filters: AlarmFilters) -> int:
    return session.scalar(select(func.count()).select_from(_listed(filters).subquery()))


def list_alarms(
    session: Session, filters: AlarmFilters, *, offset: int, limit: int
) -> list[dict[str, Any]]:
    """Newest first; ties (one batch's alarms) in a stable order."""
    rows = session.execute(
        _listed(filters).order_by(Alarm.started_at.desc(), Alarm.id).offset(offset).limit(limit)
    )
    return [alarm_record(alarm, patient_uuid, name) for alarm, patient_uuid, name in rows]


def acknowledge(
    session: Session, alarm_id: uuid.UUID, user_id: uuid.UUID, at: datetime
) -> Response:
    """Record who acknowledged the alarm: it stops escalating, and a latched alarm whose value
    has recovered ends. Acknowledging again changes nothing (the first person stays)."""
    alarm, patient = _locked(session, alarm_id)
    if alarm.state == AlarmState.ACKNOWLEDGED:
        return Response(alarm_record(alarm, patient.uuid, patient.name), ())
    if session.get(User, user_id) is None:
        raise UnknownAccountError(str(user_id))
    alarm.state, alarm.acknowledged_by, alarm.acknowledged_at = (
        AlarmState.ACKNOWLEDGED,
        user_id,
        at,
    )
    events = ["acknowledged"]
    if _acknowledge_episode(session, patient, alarm, at):
        alarm.state, alarm.ended_at = AlarmState.RESOLVED, at
        events.append("resolved")
    session.flush()
    return Response(alarm_record(alarm, patient.uuid, patient.name), tuple(events))


def silence(session: Session, alarm_id: uuid.UUID, seconds: int, at: datetime) -> Response:
    """Pause the alarm's sound until `at` + `seconds`; it still shows, and still escalates
    until someone acknowledges it."""
    alarm, patient = _locked(session, alarm_id)
    alarm.silenced_until = at + timedelta(seconds=seconds)
    session.flush()
    return Response(alarm_record(alarm, patient.uuid, patient.name), ("silenced",))


def _locked(session: Session, alarm_id: uuid.UUID) -> tuple[Alarm, Patient]:
    """The open alarm and its patient, the patient's row locked as data_app locks it, so an
    acknowledgement and a batch stepping the same episodes take turns."""
    patient_id = session.scalar(select(Alarm.patient_id).where(Alarm.id == alarm_id))
    if patient_id is None:
        raise AlarmNotFoundError(str(alarm_id))
    patient = session.scalars(
        select(Patient).where(Patient.id == patient_id).with_for_update(key_share=True)
    ).one()
    alarm = session.get(Alarm, alarm_id, populate_existing=True)
    if alarm.state == AlarmState.RESOLVED:
        raise AlarmEndedError(str(alarm_id))
    return alarm, patient


def _acknowledge_episode(session: Session, patient: Patient, alarm: Alarm, at: datetime) -> bool:
    """Tell the engine's episode of a physiological alarm; True if that ended the alarm."""
    episodes = load_episodes(patient.alarm_episodes)
    try:
        condition = Condition.parse(alarm.condition)
    except ValueError:
        return False  # not one of the engine's conditions (NEWS2, technical)
    episode = episodes.get(condition)
    if episode is None or episode.alarm is None:
        return False
    limits = effective_limits(session.get(AlarmLimits, patient.id))
    step = AlarmEngine(limits).acknowledge(condition, episode, at)
    episodes.update(step.episodes)
    patient.alarm_episodes = dump_episodes(episodes)
    return bool(step.events)
