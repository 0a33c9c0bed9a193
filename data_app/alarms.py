"""Physiological alarms, raised and resolved in the batch's transaction from each patient's
limits (shared/alarm_limits.py) by the alarm engine (shared/alarms).

The engine decides; this module keeps its state in the patient's row and turns its events
into alarm rows: one row per episode, a notification when one is raised or goes up to high
priority, the row resolved when the engine resolves it. A replayed batch inserts no samples,
so it raises nothing again; late samples change nothing (the engine ignores them).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.alarm_limits import all_quiet, effective_limits, quiet_ranges
from shared.alarm_records import (
    INVALID_DATA,
    NO_DATA,
    alarm_view,
    dump_episodes,
    load_episodes,
    open_alarm,
)
from shared.alarm_text import alarm_message, invalid_data_message
from shared.alarms import AlarmEngine, Condition, Event, EventKind, Sample
from shared.models import (
    Alarm,
    AlarmKind,
    AlarmLimits,
    AlarmPriority,
    AlarmState,
    Notification,
    Patient,
)
from shared.news2 import Band
from shared.notifications import add_notification

if TYPE_CHECKING:
    from data_app.alerts import AlertDecision
    from data_app.services import StoredSample


@dataclass(frozen=True, slots=True)
class AlarmChange:
    """One alarm the batch raised, upgraded or resolved, for the live stream after the commit;
    `notification` when clinicians are to be told (raised, or up to high)."""

    kind: EventKind
    view: dict
    notification: Notification | None


@dataclass(frozen=True, slots=True)
class AlarmTiming:
    delay: timedelta
    max_gap: timedelta


def raise_alarms(
    session: Session,
    stored: Sequence[StoredSample],
    *,
    user_id,
    timing: AlarmTiming,
) -> list[AlarmChange]:
    """Step each patient's episodes over their new samples, oldest first; store what changed.

    Runs in the caller's transaction after `raise_alerts`, which has locked these patients'
    rows until the commit: two consumers never step one patient's episodes at once.
    """
    by_patient: dict[int, list[StoredSample]] = defaultdict(list)
    for item in stored:
        by_patient[item.patient_id].append(item)
    if not by_patient:
        return []
    ids = sorted(by_patient)
    rows = session.execute(
        select(Patient.id, Patient.name, Patient.alarm_episodes)
        .where(Patient.id.in_(ids))
        .order_by(Patient.id)
        .with_for_update(key_share=True)
    ).all()
    limits = {
        row.patient_id: row
        for row in session.scalars(select(AlarmLimits).where(AlarmLimits.patient_id.in_(ids)))
    }
    changes: list[AlarmChange] = []
    for patient_id, name, plain in rows:
        patient_limits = effective_limits(limits.get(patient_id))
        # Nearly every patient, nearly always: nothing under way and every value inside its
        # limits. The engine would step idle episodes (a tenth of a millisecond a sample,
        # twice what storing one costs) to raise nothing and remember nothing.
        if plain is None:
            ranges = quiet_ranges(patient_limits)
            if all(all_quiet(ranges, item.sample) for item in by_patient[patient_id]):
                continue
        engine = AlarmEngine(patient_limits, timing.delay, timing.max_gap)
        episodes = load_episodes(plain)
        events: list[Event] = []
        for item in sorted(by_patient[patient_id], key=lambda i: i.sample.timestamp):
            step = engine.step(episodes, Sample.from_vitals(item.sample))
            episodes = step.episodes
            events.extend(step.events)
        new_plain = dump_episodes(episodes)
        if new_plain != plain:
            session.execute(
                Patient.__table__.update()
                .where(Patient.id == patient_id)
                .values(alarm_episodes=new_plain)
            )
        if events:
            patient = _Patient(patient_id, by_patient[patient_id][0].patient_uuid, name)
            changes.extend(_apply(session, patient, event, user_id) for event in events)
    changes.extend(_data_flows_again(session, by_patient, {r.id: r.name for r in rows}))
    return changes


def _data_flows_again(
    session: Session, by_patient: dict[int, list[StoredSample]], names: dict[int, str]
) -> list[AlarmChange]:
    """A stored sample ends its patient's technical alarms: no data (raised by the worker's
    alarm watch) and invalid data (raised by `raise_invalid_data`)."""
    silent = session.scalars(
        select(Alarm).where(
            Alarm.patient_id.in_(by_patient),
            Alarm.condition.in_((NO_DATA, INVALID_DATA)),
            Alarm.state != AlarmState.RESOLVED,
        )
    ).all()
    changes = []
    for alarm in silent:
        items = by_patient[alarm.patient_id]
        alarm.state = AlarmState.RESOLVED
        alarm.ended_at = min(item.sample.timestamp for item in items)
        view = alarm_view(alarm, items[0].patient_uuid, names[alarm.patient_id])
        changes.append(AlarmChange(EventKind.RESOLVED, view, None))
    session.flush()
    return changes


@dataclass(frozen=True, slots=True)
class _Patient:
    id: int
    uuid: object
    name: str


def _apply(session: Session, patient: _Patient, event: Event, user_id) -> AlarmChange:
    condition = str(event.condition)
    alarm = open_alarm(session, patient.id, condition)
    notification = None
    if event.kind is EventKind.RESOLVED:
        if alarm is not None:
            alarm.state, alarm.ended_at = AlarmState.RESOLVED, event.timestamp
    else:
        if alarm is None:
            # An open row without an episode (its state lost) is the same alarm: no second.
            alarm = Alarm(
                patient_id=patient.id,
                kind=AlarmKind.PHYSIOLOGICAL,
                condition=condition,
                started_at=event.timestamp,
                escalation_level=0,
            )
            session.add(alarm)
        # Raised, or raised again at a higher priority: an acknowledgement of the lesser
        # alarm no longer holds, and the ward is told again.
        alarm.priority, alarm.value, alarm.limit_value = event.priority, event.value, event.limit
        alarm.state, alarm.acknowledged_by, alarm.acknowledged_at = AlarmState.ACTIVE, None, None
        notification = _notify(session, patient, event.condition, event, user_id)
        alarm.notification_id = notification.seq
    session.flush()
    return AlarmChange(event.kind, alarm_view(alarm, patient.uuid, patient.name), notification)


def _notify(
    session: Session, patient: _Patient, condition: Condition, event: Event, user_id
) -> Notification:
    title, text = alarm_message(patient.name, condition, event.priority, event.value, event.limit)
    notification = add_notification(
        session, user_id=user_id, title=title, text=text, patient_id=patient.id
    )
    notification.patient = session.get(Patient, patient.id)
    return notification


# A NEWS2 band is an alarm condition of its own: its priority is the band's.
NEWS2 = "news2"
_NEWS2_PRIORITY = {Band.HIGH: AlarmPriority.HIGH, Band.MEDIUM: AlarmPriority.MEDIUM}


def news2_alarm(
    session: Session,
    patient: Patient,
    decision: AlertDecision,
    score: int,
    at: datetime,
    notification: Notification,
) -> AlarmChange | None:
    """The NEWS2 alarm a band alert opens, raises or ends, told by the alert's own
    notification: a worse band opens it (or raises its priority), a settled return to low
    ends it. Its latch is NEWS2's own: a lower band counts only after ALERT_RECOVERY_SAMPLES."""
    alarm = open_alarm(session, patient.id, NEWS2)
    if decision.kind == "recovered":
        if alarm is None:
            return None
        alarm.state, alarm.ended_at, alarm.value = AlarmState.RESOLVED, at, score
        kind = EventKind.RESOLVED
    else:
        priority = _NEWS2_PRIORITY.get(decision.band, AlarmPriority.LOW)
        kind = EventKind.RAISED if alarm is None else EventKind.UPGRADED
        if alarm is None:
            alarm = Alarm(
                patient_id=patient.id,
                kind=AlarmKind.PHYSIOLOGICAL,
                condition=NEWS2,
                started_at=at,
                escalation_level=0,
            )
            session.add(alarm)
        # A worse band re-annunciates: any acknowledgement of the lesser one lapses.
        alarm.priority, alarm.value, alarm.limit_value = priority, score, None
        alarm.state, alarm.acknowledged_by, alarm.acknowledged_at = AlarmState.ACTIVE, None, None
        alarm.notification_id = notification.seq
    session.flush()
    return AlarmChange(kind, alarm_view(alarm, patient.uuid, patient.name), None)


def raise_invalid_data(
    session: Session, refused: dict[uuid.UUID, int], *, user_id, at: datetime
) -> list[AlarmChange]:
    """A low technical alarm for each known patient whose monitor had this many samples in a
    row refused, unless one is open. An unknown patient is never created from bad input."""
    patients = session.execute(
        select(Patient.id, Patient.uuid, Patient.name).where(Patient.uuid.in_(refused))
    ).all()
    open_ids = set(
        session.scalars(
            select(Alarm.patient_id).where(
                Alarm.patient_id.in_([p.id for p in patients]),
                Alarm.condition == INVALID_DATA,
                Alarm.state != AlarmState.RESOLVED,
            )
        )
    )
    changes = []
    for patient_id, patient_uuid, name in patients:
        if patient_id in open_ids:
            continue
        alarm = Alarm(
            patient_id=patient_id,
            kind=AlarmKind.TECHNICAL,
            condition=INVALID_DATA,
            priority=AlarmPriority.LOW,
            value=refused[patient_uuid],
            started_at=at,
            state=AlarmState.ACTIVE,
            escalation_level=0,
        )
        session.add(alarm)
        title, text = invalid_data_message(name, refused[patient_uuid])
        notification = add_notification(
            session, user_id=user_id, title=title, text=text, patient_id=patient_id
        )
        notification.patient = session.get(Patient, patient_id)
        alarm.notification_id = notification.seq
        session.flush()
        changes.append(
            AlarmChange(EventKind.RAISED, alarm_view(alarm, patient_uuid, name), notification)
        )
    return changes
