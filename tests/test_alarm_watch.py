"""The worker's alarm watch: escalation once per period until acknowledged, exactly once with
several workers, and the no-data technical alarm that the next sample ends. Time is passed
in; tests/test_alarm_escalation_worker.py runs it in real worker processes."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from data_app.services import DataService
from shared.db import db, migrate
from shared.models import Alarm, Notification, Patient, PatientMetric
from shared.sample import VitalsSample
from tests.helpers import NORMAL_VITALS, data_app_on
from worker_app import create_app as create_worker_app
from worker_app.alarm_watch import check_alarms

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
PERIOD = timedelta(seconds=60)


@pytest.fixture
def make_worker(database_url: str, redis_settings: dict[str, str]) -> Iterator[Callable[[], Flask]]:
    apps: list[Flask] = []

    def make() -> Flask:
        app = create_worker_app(
            {
                "TESTING": True,
                "DATABASE_URL": database_url,
                "AI_API_TOKEN": "unused",  # the watch never calls the AI API
                **redis_settings,
            }
        )
        migrate(db.engine(app))
        apps.append(app)
        return app

    yield make
    for app in apps:
        db.engine(app).dispose()


@pytest.fixture
def worker(make_worker: Callable[[], Flask]) -> Flask:
    return make_worker()


def add_patient(app: Flask, name: str = "Omar Haddad", last_sample: datetime | None = None) -> int:
    with db.sessionmaker(app).begin() as session:
        patient = Patient(uuid=uuid.uuid4(), name=name)
        session.add(patient)
        session.flush()
        if last_sample is not None:
            vitals = dict(NORMAL_VITALS)
            session.add(
                PatientMetric(
                    patient_id=patient.id,
                    timestamp=last_sample,
                    news2_score=0,
                    news2_band="low",
                    **vitals,
                )
            )
        return patient.id


def add_alarm(app: Flask, patient_id: int, **columns) -> uuid.UUID:
    defaults = {
        "kind": "physiological",
        "condition": "spo2_low",
        "priority": "high",
        "value": 80,
        "limit_value": 85,
        "started_at": T0,
        "state": "active",
        "escalation_level": 0,
    }
    alarm = Alarm(patient_id=patient_id, **(defaults | columns))
    with db.sessionmaker(app).begin() as session:
        session.add(alarm)
    return alarm.id


def alarm(app: Flask, alarm_id: uuid.UUID) -> Alarm:
    with db.sessionmaker(app)() as session:
        return session.get(Alarm, alarm_id)


def escalation_notices(app: Flask) -> list[str]:
    with db.sessionmaker(app)() as session:
        query = select(Notification.title).where(Notification.title.contains("escalation"))
        return list(session.scalars(query.order_by(Notification.seq)))


def test_an_unacknowledged_high_alarm_escalates_once_per_period_up_to_the_top(worker):
    alarm_id = add_alarm(worker, add_patient(worker))
    seen = []
    for seconds in (59, 60, 61, 90, 119, 120, 180, 240, 300, 600):
        check_alarms(worker, T0 + timedelta(seconds=seconds))
        seen.append(alarm(worker, alarm_id).escalation_level)
    # Levels 1, 2, 3 at 60, 120, 180 s; three is the top (ALARM_ESCALATION_MAX_LEVEL).
    assert seen == [0, 1, 1, 1, 1, 2, 3, 3, 3, 3]
    assert escalation_notices(worker) == [
        f"Omar Haddad: SpO2 low unacknowledged (escalation {level})" for level in (1, 2, 3)
    ]
    assert alarm(worker, alarm_id).escalated_at == T0 + timedelta(seconds=180)


def test_acknowledging_stops_the_escalation(worker):
    alarm_id = add_alarm(worker, add_patient(worker))
    check_alarms(worker, T0 + PERIOD)
    with db.sessionmaker(worker).begin() as session:
        session.get(Alarm, alarm_id).state = "acknowledged"
    for minutes in (2, 3, 10):
        check_alarms(worker, T0 + minutes * PERIOD)
    assert alarm(worker, alarm_id).escalation_level == 1
    assert len(escalation_notices(worker)) == 1


def test_a_medium_alarm_left_alone_escalates_to_high(worker):
    alarm_id = add_alarm(worker, add_patient(worker), priority="medium", condition="pulse_high")
    check_alarms(worker, T0 + PERIOD)
    escalated = alarm(worker, alarm_id)
    assert (escalated.priority, escalated.escalation_level) == ("high", 1)
    assert escalation_notices(worker) == ["Omar Haddad: Pulse high unacknowledged (escalation 1)"]


@pytest.mark.parametrize(
    "columns",
    [
        {"state": "resolved"},
        {"state": "acknowledged"},
        {"priority": "low"},
        {"kind": "technical", "priority": "medium", "condition": "no_data"},
    ],
)
def test_what_does_not_escalate(worker, columns):
    alarm_id = add_alarm(worker, add_patient(worker), **columns)
    check_alarms(worker, T0 + 10 * PERIOD)
    assert alarm(worker, alarm_id).escalation_level == 0
    assert escalation_notices(worker) == []


def test_a_new_worker_keeps_the_schedule_of_the_one_before(make_worker):
    first = make_worker()
    alarm_id = add_alarm(first, add_patient(first))
    check_alarms(first, T0 + PERIOD + timedelta(seconds=5))
    # The schedule is in the database: a new process picks up 60 s after the last step.
    second = make_worker()
    check_alarms(second, T0 + 2 * PERIOD)
    assert alarm(second, alarm_id).escalation_level == 1
    check_alarms(second, T0 + 2 * PERIOD + timedelta(seconds=5))
    assert alarm(second, alarm_id).escalation_level == 2


def test_workers_checking_at_once_escalate_each_step_once(make_worker):
    workers = [make_worker() for _ in range(4)]
    alarm_ids = [add_alarm(workers[0], add_patient(workers[0], f"P{i}")) for i in range(5)]
    at = T0 + PERIOD
    start = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def check(app: Flask) -> None:
        try:
            start.wait(10)
            check_alarms(app, at)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=check, args=(app,)) for app in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert [alarm(workers[0], a).escalation_level for a in alarm_ids] == [1] * 5
    assert len(escalation_notices(workers[0])) == 5


# -- no data ----------------------------------------------------------------------------------


def no_data_alarms(app: Flask) -> list[Alarm]:
    with db.sessionmaker(app)() as session:
        query = select(Alarm).where(Alarm.condition == "no_data").order_by(Alarm.started_at)
        return list(session.scalars(query))


def test_a_silent_monitor_raises_one_technical_alarm(worker):
    now = datetime.now(UTC)
    silent = add_patient(worker, "Silent Monitor", last_sample=now - timedelta(seconds=16))
    add_patient(worker, "Sending", last_sample=now - timedelta(seconds=4))
    add_patient(worker, "Long gone", last_sample=now - timedelta(hours=2))
    add_patient(worker, "Never sent")
    check_alarms(worker, now)
    check_alarms(worker, now + timedelta(seconds=5))
    (raised,) = no_data_alarms(worker)
    assert (raised.patient_id, raised.kind, raised.priority, raised.state) == (
        silent,
        "technical",
        "medium",
        "active",
    )
    with db.sessionmaker(worker)() as session:
        titles = session.scalars(select(Notification.title)).all()
        linked = session.scalar(
            select(Notification.title).where(Notification.seq == raised.notification_id)
        )
    assert titles == [linked] == ["Silent Monitor: No data (medium priority)"]


def test_the_next_sample_ends_the_no_data_alarm(worker, database_url, redis_settings):
    now = datetime.now(UTC).replace(microsecond=0)
    patient_id = add_patient(worker, last_sample=now - timedelta(seconds=30))
    check_alarms(worker, now)
    with db.sessionmaker(worker)() as session:
        patient_uuid = session.get(Patient, patient_id).uuid
    with data_app_on({"DATABASE_URL": database_url, **redis_settings}) as data:
        sample = VitalsSample(patient_uuid=patient_uuid, timestamp=now, **NORMAL_VITALS)
        DataService(data).store([sample])
    (ended,) = no_data_alarms(worker)
    assert (ended.state, ended.ended_at) == ("resolved", now)
    # Silent again later: a new alarm, not the old one reopened.
    check_alarms(worker, now + timedelta(seconds=20))
    assert [a.state for a in no_data_alarms(worker)] == ["resolved", "active"]
