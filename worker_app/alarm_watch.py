"""The alarm watch: escalates high alarms nobody acknowledged, and raises a technical alarm for
a patient whose monitor has gone silent.

Everything is timed from the database's own timestamps (an alarm's start, its last
escalation, a patient's newest sample), never from a timer in memory, so the schedule
survives any process restarting. Each step is a conditional UPDATE (this alarm, at this
level, still active), so of several workers checking at once exactly one escalates it, and
a worker that was down escalates once per period from where it is, not in a burst.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.alarm_records import NO_DATA, alarm_view, condition_text
from shared.alarm_text import escalation_message, no_data_message
from shared.analysis_queue import Origin
from shared.background import BackgroundThread
from shared.db import db, utcnow
from shared.models import (
    Alarm,
    AlarmKind,
    AlarmPriority,
    AlarmState,
    Notification,
    Patient,
    PatientMetric,
)
from shared.notifications import add_notification, announce, events

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WatchSettings:
    escalation_period: timedelta
    max_level: int
    stale_after: timedelta  # no sample for this long: the monitor is silent
    forget_after: timedelta  # silent for longer: disconnected on purpose, not an alarm
    ward_id: uuid.UUID

    @classmethod
    def of(cls, app: Flask) -> WatchSettings:
        config = app.config
        return cls(
            escalation_period=timedelta(seconds=config["ALARM_ESCALATION_SECONDS"]),
            max_level=config["ALARM_ESCALATION_MAX_LEVEL"],
            stale_after=timedelta(
                seconds=config["METRICS_INTERVAL"] * config["STALE_AFTER_INTERVALS"]
            ),
            forget_after=timedelta(seconds=config["NO_DATA_ALARM_WINDOW_SECONDS"]),
            ward_id=config["WARD_ID"],
        )


@dataclass(frozen=True, slots=True)
class Change:
    """An alarm this check changed: its live event, and the notification it sent."""

    event: str
    view: dict
    notification: Notification


def escalate_due(session: Session, settings: WatchSettings, now: datetime) -> list[Change]:
    """Escalate each active (unacknowledged) alarm whose period has passed since it was
    raised or last escalated, by one level, up to the most there is: every high alarm, and a
    medium physiological one, which its first escalation makes high (IEC 60601-1-8 lets an
    unanswered condition rise in priority; a patient past a limit nobody has seen is urgent)."""
    due = session.execute(
        select(Alarm.id, Alarm.escalation_level)
        .where(
            Alarm.state == AlarmState.ACTIVE,
            or_(
                Alarm.priority == AlarmPriority.HIGH,
                and_(
                    Alarm.priority == AlarmPriority.MEDIUM,
                    Alarm.kind == AlarmKind.PHYSIOLOGICAL,
                ),
            ),
            Alarm.escalation_level < settings.max_level,
            func.coalesce(Alarm.escalated_at, Alarm.started_at) <= now - settings.escalation_period,
        )
        .order_by(Alarm.started_at)
    ).all()
    changes = []
    for alarm_id, level in due:
        claimed = session.execute(
            update(Alarm)
            .where(
                Alarm.id == alarm_id,
                Alarm.escalation_level == level,
                Alarm.state == AlarmState.ACTIVE,
            )
            .values(escalation_level=level + 1, escalated_at=now, priority=AlarmPriority.HIGH)
        )
        if claimed.rowcount != 1:
            continue  # another worker did this step, or someone acknowledged it meanwhile
        alarm = session.get(Alarm, alarm_id, populate_existing=True)
        patient = session.get(Patient, alarm.patient_id)
        waited = (now - alarm.started_at).total_seconds() / 60
        title, text = escalation_message(patient.name, condition_text(alarm), level + 1, waited)
        changes.append(_notified(session, settings, alarm, patient, "escalated", title, text))
    return changes


def raise_no_data(session: Session, settings: WatchSettings, now: datetime) -> list[Change]:
    """A medium technical alarm for each patient whose newest sample is older than
    `stale_after` (but not than `forget_after`), unless one is open already. data_app
    resolves it with the next sample it stores."""
    newest = (
        select(func.max(PatientMetric.timestamp))
        .where(PatientMetric.patient_id == Patient.id)
        .correlate(Patient)
        .scalar_subquery()
    )
    open_alarm = (
        select(Alarm.id)
        .where(
            Alarm.patient_id == Patient.id,
            Alarm.condition == NO_DATA,
            Alarm.state != AlarmState.RESOLVED,
        )
        .exists()
    )
    silent = session.execute(
        select(Patient.id, newest.label("newest"))
        .where(~open_alarm)
        .where(newest < now - settings.stale_after, newest >= now - settings.forget_after)
    ).all()
    changes = []
    for patient_id, last_sample in silent:
        patient = session.get(Patient, patient_id)
        alarm = Alarm(
            patient_id=patient_id,
            kind=AlarmKind.TECHNICAL,
            condition=NO_DATA,
            priority=AlarmPriority.MEDIUM,
            started_at=now,
            state=AlarmState.ACTIVE,
            escalation_level=0,
        )
        # Two workers at once: the partial unique index lets one open alarm in; the other's
        # insert fails alone, inside its savepoint.
        try:
            with session.begin_nested():
                session.add(alarm)
                session.flush()
        except IntegrityError:
            log.info("no-data alarm already raised", extra={"patient_id": patient_id})
            continue
        silent_for = (now - last_sample).total_seconds()
        title, text = no_data_message(patient.name, silent_for)
        changes.append(_notified(session, settings, alarm, patient, "raised", title, text))
    return changes


def check_alarms(app: Flask, now: datetime | None = None) -> list[Change]:
    """One check: escalations, then silent monitors; each in a transaction of its own, and
    announced after its commit."""
    settings = WatchSettings.of(app)
    now = now or utcnow()
    done: list[Change] = []
    for step in (escalate_due, raise_no_data):
        with db.sessionmaker(app).begin() as session:
            changes = step(session, settings, now)
        for change in changes:
            events(app).publish(f"alarm.{change.event}", {"alarm": change.view})
        announce(
            app, "notification.created", [c.notification for c in changes], source=Origin.ALERT
        )
        done.extend(changes)
    return done


class AlarmWatch(BackgroundThread):
    """Checks every ALARM_CHECK_SECONDS in each worker; the first check one interval in."""

    failure_message = "alarm check failed; trying again next interval"

    def __init__(self, app: Flask) -> None:
        super().__init__("alarm-watch")
        self.app = app
        self.interval: float = app.config["ALARM_CHECK_SECONDS"]
        self.first_delay = self.retry_delay = self.interval

    def _work(self) -> float:
        with self.app.app_context():
            check_alarms(self.app)
        return self.interval


def _notified(
    session: Session,
    settings: WatchSettings,
    alarm: Alarm,
    patient: Patient,
    event: str,
    title: str,
    text: str,
) -> Change:
    notification = add_notification(
        session, user_id=settings.ward_id, title=title, text=text, patient_id=patient.id
    )
    notification.patient = patient
    alarm.notification_id = notification.seq
    session.flush()
    return Change(event, alarm_view(alarm, patient.uuid, patient.name), notification)
